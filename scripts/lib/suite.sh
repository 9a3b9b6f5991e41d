# shellcheck shell=bash
# Helpers shared by the suites that judge a whole run at its end (scripts/soak, scripts/crash-test):
# progress and failures under the suite's name, the server log since an offset, counter drift.
# Source it after lib/pg.sh, with SUITE set to the suite's name.

# shellcheck disable=SC2034 # used by the suites
{
    schema_file=${CC_REFERENCE_SCHEMA:-$REPO_ROOT/tests/fixtures/reference_schema.sql}
    dir=$REPO_ROOT/tests/$CC_SUITE # the suite's SQL scripts (tests/soak, tests/crash)
    work=$(dirname "$CC_PGDATA")
}
started=$(date +%s.%N)

log() { printf '%s: %s\n' "$SUITE" "$*"; }
failures=()
fail() { failures+=("$*"); printf '%s: FAIL: %s\n' "$SUITE" "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
sql() { cc_psql -At -c "$1"; }

# The size of the server log now, and what the log got after such a size.
log_size() { stat -c %s "$CC_PGDATA.log"; }
log_since() { tail -c +"$(($1 + 1))" "$CC_PGDATA.log"; }

# Errors in a piece of server log: how many, and the most frequent messages (at most $2) on stderr.
count_errors() { grep -cE ' (ERROR|FATAL|PANIC): ' <<<"$1" || true; }
show_errors() {
    grep -E ' (ERROR|FATAL|PANIC): ' <<<"$1" | sed 's/.* \(ERROR\|FATAL\|PANIC\): */    /' |
        sort | uniq -c | sort -rn | head -"$2" >&2 || true
}

# Every counter that verify_campaign_counters() finds wrong, one a line (nothing when all are exact).
drifting_counters() {
    sql "SELECT campaign_id || ' ' || counter || ' stored ' || stored || ' actual ' || actual
           FROM campaign_counters.verify_campaign_counters()"
}

# Ends the suite: its total time, then PASS, or FAILED with every failure and exit status 1.
finish() {
    log "total time $(elapsed "$started" "$(now)")s"
    if ((${#failures[@]})); then
        log "FAILED (${#failures[@]} problems):"
        printf '  - %s\n' "${failures[@]}"
        exit 1
    fi
    log "PASS"
}
