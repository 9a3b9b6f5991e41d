"""Workload 6: the deferred counting mode against immediate, no trigger and floor, with the background worker."""

import threading
import time

import psycopg

from .. import check, log, server
from ..profiles import Profile, Scenario
from ..samples import Samples
from . import single_row

HOOK_SCRIPT = server.BENCH_SRC / "pgbench/webhook_hot10.sql"
HOOK_MODES = ("campaign_counters", "deferred")
FRESHNESS_EVERY = 0.1  # seconds between two samples of the oldest pending change's age
SIZE_EVERY = 1.0  # seconds between two samples of the delta storage's size
UNSERVED_DB = "bench_unserved"  # a database the worker does not serve: pending changes stay


def run(profile: Profile, samples: Samples) -> None:
    p = profile
    log.info(f"6. deferred counting: {p.pgbench_rounds} rounds of {p.pgbench_seconds}s per mode and scenario")
    samples.add("worker", worker_settings(), measure="settings")
    scenarios = p.deferred_scenarios()
    slots = list(dict.fromkeys(slot for s in scenarios for slot in s.slots()))
    single_row.create_copies(slots)
    for scenario in scenarios:
        single_row.run_scenario(p, scenario, samples, kind="deferred_tps")
    hot = scenarios[0]
    sustained(p, hot, samples)
    single_row.drop_copies(slots)
    webhook_bodies(p, hot, samples)
    current_counters_latency(p, samples)


def worker_settings() -> dict:
    """The worker's settings as the server has them (None: the library is not preloaded)."""
    with server.connect() as conn:
        found = dict(
            conn.execute(
                """SELECT name, setting || coalesce(unit, '') FROM pg_settings
                    WHERE name IN ('shared_preload_libraries', 'campaign_counters.fold_interval',
                                   'campaign_counters.databases')"""
            ).fetchall()
        )
    return {
        "preload": found.get("shared_preload_libraries"),
        "fold_interval": found.get("campaign_counters.fold_interval"),
        "databases": found.get("campaign_counters.databases"),
    }


def sustained(profile: Profile, hot: Scenario, samples: Samples) -> None:
    """The hot load in deferred mode for sustained_seconds, the worker folding at its interval: the age of
    the oldest pending change every 100 ms, the delta storage's size every second, and its size at the end."""
    p, copy = profile, single_row.schema("deferred", 100)
    single_row.reload_copy("deferred", 100)
    server.settle(copy)
    log.info(f"   sustained hot load, deferred, {hot.clients} clients for {p.sustained_seconds}s")
    stop = threading.Event()
    ages: list[float] = []
    sizes: list[int] = []
    served: list[bool] = []

    def sample() -> None:
        with server.connect() as conn:
            last_size = 0.0
            while not stop.wait(FRESHNESS_EVERY):
                age, serves = conn.execute(
                    """SELECT coalesce(extract(epoch FROM oldest_pending_age), 0)::float8, worker_serves
                         FROM campaign_counters.health() WHERE recipients = %s::regclass""",
                    (f"{copy}.campaign_recipients",),
                ).fetchone()
                ages.append(age)
                served.append(serves)
                if time.monotonic() - last_size >= SIZE_EVERY:
                    last_size = time.monotonic()
                    sizes.append(delta_storage_bytes(conn))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        tps = server.pgbench(
            server.BENCH_SRC / "pgbench/update.sql",
            p.sustained_seconds,
            hot.clients,
            hot.lo,
            hot.hi,
            f"-c search_path={copy},public",
        )
    finally:
        stop.set()
        sampler.join()
    with server.connect() as conn:
        end_size = delta_storage_bytes(conn)
        pending = conn.execute("SELECT count(*) FROM campaign_counters.pending_changes").fetchone()[0]
    samples.add("sustained", tps, measure="tps")
    samples.add("sustained", ages, measure="oldest_pending_age")
    samples.add("sustained", sizes, measure="delta_bytes")
    samples.add("sustained", end_size, measure="delta_bytes_end")
    samples.add("sustained", pending, measure="pending_rows_end")
    samples.add("sustained", all(served) if served else False, measure="worker_serves")
    log.info(f"   sustained: {tps:.0f} tps, {len(ages)} age samples, delta storage at the end {end_size} bytes")
    check.counters(samples, "sustained hot load", "deferred", copy)


def delta_storage_bytes(conn: psycopg.Connection) -> int:
    """The extension's delta table with its index and TOAST."""
    return conn.execute("SELECT pg_total_relation_size('campaign_counters.pending_changes')").fetchone()[0]


def hook_schema(variant: str) -> str:
    return f"h_{variant}"


def webhook_bodies(profile: Profile, hot: Scenario, samples: Samples) -> None:
    """The hot campaign fed webhook bodies of 10 statuses per call, immediate against deferred."""
    p = profile
    log.info(f"   hot campaign, webhook bodies of 10 statuses, {hot.clients} clients: {', '.join(HOOK_MODES)}")
    for variant in HOOK_MODES:
        copy = hook_schema(variant)
        server.execute(f"CREATE SCHEMA {copy}")
        server.execute(
            server.REFERENCE_SCHEMA.read_text(),
            "CREATE SEQUENCE hook_block",
            "INSERT INTO marketing_campaigns (name, status) VALUES ('hot', 'running')",
            f"""INSERT INTO campaign_recipients (campaign_id, phone_number, status, whatsapp_message_id, sent_at)
                SELECT (SELECT id FROM marketing_campaigns), '+1660' || lpad(n::text, 8, '0'), 'sent',
                       'wamid.W' || n, timestamptz '2026-11-27 09:00+00'
                  FROM generate_series(0, {p.hook_recipients - 1}) n""",
            f"SELECT bench.use_variant('{variant}')",
            "VACUUM (ANALYZE) campaign_recipients, marketing_campaigns",
            search_path=copy,
        )
    for round_ in range(1, p.pgbench_rounds + 1):
        line = []
        for i in range(len(HOOK_MODES)):
            variant = HOOK_MODES[(i + round_ - 1) % len(HOOK_MODES)]
            copy = hook_schema(variant)
            server.settle(copy)
            tps = server.pgbench(
                HOOK_SCRIPT, p.pgbench_seconds, hot.clients, 0, p.hook_recipients, f"-c search_path={copy},public"
            )
            samples.add("hook_tps", tps, variant=variant, round=round_)
            line.append(f"{variant} {tps:.0f}")
        log.info(f"   webhook bodies round {round_}: " + "; ".join(line))
    for variant in HOOK_MODES:
        copy = hook_schema(variant)
        # Statuses that changed their row: one per delivered recipient, two per read one.
        applied, sent = server.query(
            """SELECT ARRAY[count(*) FILTER (WHERE status = 'delivered') + 2 * count(*) FILTER (WHERE status = 'read'),
                            (SELECT CASE WHEN is_called THEN 10 * last_value ELSE 0 END FROM hook_block)]
                 FROM campaign_recipients""",
            copy,
        )
        samples.add("hook_applied", {"applied": applied, "sent": sent}, variant=variant)
        check.counters(samples, "webhook bodies of 10 statuses, hot campaign", variant, copy)
        server.use_variant("none", copy)
        server.execute(f"DROP SCHEMA {copy} CASCADE")


def current_counters_latency(profile: Profile, samples: Samples, calls: int = 50) -> None:
    """current_counters() of one campaign of a deferred pair with this many pending rows, in a database
    the worker does not serve (so nothing is folded meanwhile), against reading the stored row."""
    p = profile
    server.execute(f"DROP DATABASE IF EXISTS {UNSERVED_DB}", f"CREATE DATABASE {UNSERVED_DB}")
    with psycopg.connect(dbname=UNSERVED_DB, autocommit=True) as conn:
        conn.execute(server.REFERENCE_SCHEMA.read_text())
        conn.execute("CREATE EXTENSION campaign_counters")
        campaign = conn.execute(
            "INSERT INTO marketing_campaigns (name, status) VALUES ('hot', 'running') RETURNING id::text"
        ).fetchone()[0]
        conn.execute(
            f"""INSERT INTO campaign_recipients (campaign_id, phone_number, status, whatsapp_message_id)
                SELECT %s, '+1670' || lpad(n::text, 8, '0'), 'pending', 'wamid.P' || n
                  FROM generate_series(1, {p.per_campaign}) n""",
            (campaign,),
        )
        conn.execute("SELECT campaign_counters.attach(mode => 'deferred')")
        pending = 0
        for level in p.current_pending:
            # One pending row per statement: each UPDATE moves one recipient one status step.
            conn.execute(
                f"""DO $$ BEGIN FOR n IN {pending + 1}..{level} LOOP
                        UPDATE campaign_recipients SET status = CASE status WHEN 'pending' THEN 'sent'
                               WHEN 'sent' THEN 'delivered' WHEN 'delivered' THEN 'read' ELSE 'pending' END
                         WHERE whatsapp_message_id = 'wamid.P' || (1 + (n - 1) % {p.per_campaign});
                    END LOOP; END $$"""
            )
            pending = level
            conn.execute("VACUUM (ANALYZE) campaign_counters.pending_changes")
            rows = conn.execute("SELECT count(*) FROM campaign_counters.pending_changes").fetchone()[0]
            for method, sql in (
                ("current_counters", "SELECT * FROM campaign_counters.current_counters(%s)"),
                ("stored", "SELECT * FROM marketing_campaigns WHERE id = %s::uuid"),
            ):
                conn.execute(sql, (campaign,), prepare=True).fetchall()  # warm
                times = []
                for _ in range(calls):
                    started = time.perf_counter()
                    conn.execute(sql, (campaign,), prepare=True).fetchall()
                    times.append((time.perf_counter() - started) * 1000)
                samples.add("current_counters_ms", times, method=method, pending=rows)
            log.info(f"   current_counters() with {rows} pending rows: measured")
        # In deferred mode verify compares stored plus pending changes with a recount.
        drift = conn.execute("SELECT count(*) FROM campaign_counters.verify_campaign_counters()").fetchone()[0]
        samples.add(
            "check",
            f"verify_campaign_counters(): {drift} rows",
            context="current_counters() latency",
            variant="deferred",
        )
    server.execute(f"DROP DATABASE {UNSERVED_DB}")
