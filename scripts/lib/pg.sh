# shellcheck shell=bash
# Shared shell helpers: build and install the extension, and run a private PostgreSQL as the
# postgres user (PostgreSQL refuses to run as root) in a data directory and on a port of its own.
# Source it; set CC_PGDATA and CC_PGPORT first to choose the directory and port, and PG_VERSION
# (default 15) or PG_CONFIG to choose the PostgreSQL.

PG_VERSION=${PG_VERSION:-15}
# The system PostgreSQL 15 is /usr/bin/pg_config (as registered with pgrx); another version is
# looked for where Debian installs it, unless PG_CONFIG says where it is.
if [[ $PG_VERSION == 15 ]]; then PG_CONFIG=${PG_CONFIG:-/usr/bin/pg_config}
else PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_VERSION/bin/pg_config}; fi
PG_BIN=$("$PG_CONFIG" --bindir)
# shellcheck disable=SC2034 # used by the scripts that source this file
PGXS_DIR=$(cd "$(dirname "$("$PG_CONFIG" --pgxs)")/../.." && pwd)
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CC_PGDATA=${CC_PGDATA:-/tmp/campaign_counters/data}
CC_PGPORT=${CC_PGPORT:-55432}
CC_SOCKDIR=${CC_SOCKDIR:-$(dirname "$CC_PGDATA")/socket-$CC_PGPORT}

# The Python environment that scripts/setup makes (bench/requirements.txt).
CC_VENV=${CC_VENV:-/opt/campaign_counters/venv}

export PGHOST="$CC_SOCKDIR" PGPORT="$CC_PGPORT" PGUSER=postgres PGDATABASE=${PGDATABASE:-postgres}

as_postgres() {
    # RUST_BACKTRACE would put Rust backtraces into the server's error messages.
    if [[ $(id -un) == postgres ]]; then env -u RUST_BACKTRACE "$@"; else sudo -u postgres -E env -u RUST_BACKTRACE PATH="$PATH" "$@"; fi
}

# Builds the extension in release mode and installs it into the PostgreSQL of $PG_CONFIG.
cc_install() {
    (cd "$REPO_ROOT" && cargo pgrx install --release --pg-config "$PG_CONFIG" >/dev/null)
    # Releases before the current one, so upgrade tests can install them.
    local release
    for release in "$REPO_ROOT"/sql/releases/campaign_counters--*.sql; do
        [[ -e $release ]] && install -m 644 "$release" "$("$PG_CONFIG" --sharedir)/extension/"
    done
    return 0
}

# The commit the extension is built from, with -dirty when its sources have uncommitted changes.
cc_build_id() {
    local dirty=""
    git -C "$REPO_ROOT" diff --quiet HEAD -- src sql Cargo.toml Cargo.lock || dirty=-dirty
    echo "$(git -C "$REPO_ROOT" rev-parse --short HEAD)$dirty"
}

# Starts a fresh server (any earlier one in $CC_PGDATA is stopped and wiped). Extra arguments
# are passed to postgres as -c settings, for example fsync=off.
cc_server_start() {
    cc_server_stop
    mkdir -p "$(dirname "$CC_PGDATA")" "$CC_SOCKDIR"
    chown postgres "$(dirname "$CC_PGDATA")" "$CC_SOCKDIR"
    rm -rf "$CC_PGDATA"
    as_postgres "$PG_BIN/initdb" -D "$CC_PGDATA" -A trust -U postgres --no-sync >/dev/null
    local settings=(-p "$CC_PGPORT" -k "$CC_SOCKDIR" -c listen_addresses= -c max_connections=64)
    local setting
    for setting in "$@"; do settings+=(-c "$setting"); done
    as_postgres "$PG_BIN/pg_ctl" -D "$CC_PGDATA" -l "$CC_PGDATA.log" -w -o "${settings[*]}" start >/dev/null
}

# Starts the server already in $CC_PGDATA again (after a crash, for example).
cc_server_restart() {
    as_postgres "$PG_BIN/pg_ctl" -D "$CC_PGDATA" -l "$CC_PGDATA.log" -w \
        -o "-p $CC_PGPORT -k $CC_SOCKDIR -c listen_addresses= -c max_connections=64" start >/dev/null
}

cc_server_stop() {
    if [[ -f "$CC_PGDATA/postmaster.pid" ]]; then
        as_postgres "$PG_BIN/pg_ctl" -D "$CC_PGDATA" -m fast -w stop >/dev/null 2>&1 || true
    fi
}

cc_psql() {
    "$PG_BIN/psql" -X -v ON_ERROR_STOP=1 -q "$@"
}
