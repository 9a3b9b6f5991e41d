# shellcheck shell=bash disable=SC2034 # its variables are for the scripts that source it
# Shared shell helpers: build and install the extension, and run a private PostgreSQL server as the
# postgres user (PostgreSQL refuses to run as root) in a data directory and on a port of its own.
#
# The PostgreSQL major version is a setting: PG_VERSION=15 (the default) or 18 (the tested ones,
# scripts/lib/versions.sh) chooses its pg_config; or PG_CONFIG names a pg_config, and PG_VERSION
# is what it reports. Each version has its own data directories and ports, so servers of two
# versions never collide:
#   15: data under /tmp/campaign_counters/<suite>,      ports 55430 + slot
#   18: data under /tmp/campaign_counters/pg18/<suite>, ports 56430 + slot
# Source it; a suite sets CC_SUITE (its directory name) and CC_PORT_SLOT (0-69) first, or
# CC_PGDATA and CC_PGPORT to choose the directory and port outright. CC_DATA_ROOT and
# CC_PORT_BASE move all of one checkout's servers elsewhere.

# shellcheck source=versions.sh
source "$(dirname "${BASH_SOURCE[0]}")/versions.sh"
if [[ -n ${PG_CONFIG:-} ]]; then
    cc_reported=$("$PG_CONFIG" --version | sed -n 's/^PostgreSQL \([0-9]*\).*/\1/p')
    if [[ -n ${PG_VERSION:-} && $PG_VERSION != "$cc_reported" ]]; then
        echo "campaign_counters: PG_VERSION=$PG_VERSION but PG_CONFIG=$PG_CONFIG is PostgreSQL $cc_reported" >&2
        exit 2
    fi
    PG_VERSION=$cc_reported
else
    PG_VERSION=${PG_VERSION:-15}
    PG_CONFIG=$(cc_pg_config_of "$PG_VERSION") || exit 2
    [[ -x $PG_CONFIG ]] || { echo "campaign_counters: $PG_CONFIG missing (run scripts/setup)" >&2; exit 2; }
fi
export PG_VERSION
case $PG_VERSION in
    15) cc_port_base=55430 cc_data_root=/tmp/campaign_counters ;;
    *) cc_port_base=$((56430 + 100 * (PG_VERSION - 18))) cc_data_root=/tmp/campaign_counters/pg$PG_VERSION ;;
esac
# Two checkouts testing at once (a private PostgreSQL copy each) set both apart.
cc_port_base=${CC_PORT_BASE:-$cc_port_base}
CC_DATA_ROOT=${CC_DATA_ROOT:-$cc_data_root}
PG_BIN=$("$PG_CONFIG" --bindir)
# pg_regress is in $PGXS_DIR/src/test/regress, the isolation tester in $PGXS_DIR/src/test/isolation.
PGXS_DIR=$(cd "$(dirname "$("$PG_CONFIG" --pgxs)")/../.." && pwd)
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [[ -n ${CC_SUITE:-} ]]; then
    CC_PGDATA=${CC_PGDATA:-$CC_DATA_ROOT/$CC_SUITE/data}
else
    CC_PGDATA=${CC_PGDATA:-$CC_DATA_ROOT/data}
fi
CC_PGPORT=${CC_PGPORT:-$((cc_port_base + ${CC_PORT_SLOT:-2}))}
CC_SOCKDIR=${CC_SOCKDIR:-$(dirname "$CC_PGDATA")/socket-$CC_PGPORT}

# The Python environment that scripts/setup makes (the receiver's and the benchmark's pinned requirements).
CC_VENV=${CC_VENV:-/opt/campaign_counters/venv}

# The commit the extension is built from, with -dirty when its sources have uncommitted changes.
cc_build_id() {
    local dirty=""
    git -C "$REPO_ROOT" diff --quiet HEAD -- src sql Cargo.toml Cargo.lock || dirty=-dirty
    echo "$(git -C "$REPO_ROOT" rev-parse --short HEAD)$dirty"
}

export PGHOST="$CC_SOCKDIR" PGPORT="$CC_PGPORT" PGUSER=postgres PGDATABASE=${PGDATABASE:-postgres}

as_postgres() {
    # RUST_BACKTRACE would put Rust backtraces into the server's error messages.
    if [[ $(id -un) == postgres ]]; then env -u RUST_BACKTRACE "$@"; else sudo -u postgres -E env -u RUST_BACKTRACE PATH="$PATH" "$@"; fi
}

# Builds the extension in release mode and installs it into the PostgreSQL of $PG_CONFIG (the
# cargo features for its version are chosen by cargo-pgrx).
cc_install() {
    (cd "$REPO_ROOT" && cargo pgrx install --release --pg-config "$PG_CONFIG" >/dev/null)
    # Releases before the current one, so upgrade tests can install them.
    local release
    for release in "$REPO_ROOT"/sql/releases/campaign_counters--*.sql; do
        [[ -e $release ]] && install -m 644 "$release" "$("$PG_CONFIG" --sharedir)/extension/"
    done
    return 0
}

# Starts a fresh server (any earlier one in $CC_PGDATA is stopped and wiped). Extra arguments
# are passed to postgres as -c settings, for example fsync=off.
# shellcheck disable=SC2120 # the settings are optional
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
