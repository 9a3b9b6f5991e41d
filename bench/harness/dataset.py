"""The benchmark's database: reference tables, peers, extension, helpers and identical data for every variant."""

from . import log, server
from .profiles import Profile


def load(profile: Profile) -> None:
    """Loads the main tables, saves their copy for bench.reset() and prepares workload 1's rows."""
    p = profile
    log.info(f"loading {p.recipients} recipients over {p.campaigns} campaigns")
    with server.connect() as conn:
        for path in (
            server.REFERENCE_SCHEMA,
            server.BENCH_SRC / "peers/baseline_row_trigger.sql",
            server.BENCH_SRC / "peers/baseline_statement_trigger.sql",
        ):
            conn.execute(path.read_text())
        conn.execute("CREATE EXTENSION campaign_counters")
        conn.execute((server.BENCH_SRC / "sql/setup.sql").read_text())
        for statement in (
            f"SELECT bench.load('campaign_recipients', 'marketing_campaigns', 'campaign', {p.recipients}, {p.campaigns})",
            # The campaigns of the bulk workload start empty.
            f"""INSERT INTO marketing_campaigns (name, status, total_target_customers)
                SELECT 'bulk ' || lpad(i::text, 5, '0'), 'running', {p.bulk_per_campaign}
                FROM generate_series(1, {p.bulk_campaigns}) i""",
            "SELECT bench.recount('campaign_recipients', 'marketing_campaigns')",
            "CREATE TABLE bench.campaigns_seed AS SELECT * FROM marketing_campaigns",
            "CREATE TABLE bench.recipients_seed AS SELECT * FROM campaign_recipients",
            # Workload 1's rows: a bulk send of new recipients, pending, with their message ids.
            f"""CREATE TABLE bench.bulk_rows AS
                SELECT gen_random_uuid() AS id, c.ids[(n - 1) / {p.bulk_per_campaign} + 1] AS campaign_id,
                       '+1750' || lpad(n::text, 8, '0') AS phone_number, 'pending'::text AS status,
                       'wamid.HBgL' || md5('bulk' || n) AS whatsapp_message_id,
                       NULL::timestamptz AS sent_at, NULL::timestamptz AS delivered_at,
                       NULL::timestamptz AS read_at, NULL::timestamptz AS failed_at
                FROM (SELECT array_agg(id ORDER BY name) AS ids FROM marketing_campaigns WHERE name LIKE 'bulk %') c,
                     generate_series(1, {p.bulk_rows}) n""",
            # From here on the tables always look as bench.reset() leaves them (indexes freshly built).
            "SELECT bench.reset()",
        ):
            conn.execute(statement)
    server.settle()


def facts() -> dict:
    """What the report says about the server and the loaded tables."""
    settings = """SELECT string_agg(name || ' = ' || current_setting(name), ', ' ORDER BY name) FROM pg_settings
                  WHERE name IN ('shared_buffers', 'work_mem', 'maintenance_work_mem', 'max_wal_size',
                                 'checkpoint_timeout', 'fsync', 'synchronous_commit', 'wal_level',
                                 'max_parallel_workers_per_gather', 'jit')"""
    return {
        "server_version": server.query("SELECT version()"),
        "settings": server.query(settings),
        "size_recipients": server.query("SELECT pg_size_pretty(pg_total_relation_size('campaign_recipients'))"),
    }
