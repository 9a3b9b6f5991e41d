"""Workload 4: recount of a large table by recalc, a GROUP BY query, the seed's loop and attach()."""

import time
from pathlib import Path

from .. import log, server
from ..profiles import Profile
from ..samples import Samples

GROUP_BY = "SELECT campaign_id, status, count(*) FROM big.campaign_recipients GROUP BY campaign_id, status"
RECALC = "SELECT campaign_counters.recalc_campaign_counters()"
ZERO = """UPDATE big.marketing_campaigns SET messages_pending = 0, messages_sent = 0, messages_delivered = 0,
          messages_read = 0, messages_failed = 0"""
SERIAL = "SET max_parallel_workers_per_gather = 0"
# The seed's repair loop as a client runs it: per campaign one count query and one UPDATE with the
# counts it got back (psql \gset), all in one transaction.
CLIENT_LOOP_STEP = """SELECT count(id) FILTER (WHERE status = 'sent') AS sent, count(id) FILTER (WHERE status = 'delivered') AS delivered,
       count(id) FILTER (WHERE status = 'read') AS read, count(id) FILTER (WHERE status = 'failed') AS failed,
       count(id) FILTER (WHERE status = 'pending') AS pending
  FROM big.campaign_recipients WHERE campaign_id = '{id}' \\gset
UPDATE big.marketing_campaigns SET messages_sent = :sent, messages_delivered = :delivered, messages_read = :read,
       messages_failed = :failed, messages_pending = :pending WHERE id = '{id}';
"""


def run(profile: Profile, samples: Samples, work: Path) -> None:
    p = profile
    log.info(f"4. recalc over {p.recalc_recipients} recipients in {p.recalc_campaigns} campaigns: loading")
    started = time.perf_counter()
    load(p)
    samples.add("recalc", time.perf_counter() - started, method="load")
    size = server.query(
        """SELECT pg_size_pretty(pg_relation_size('big.campaign_recipients')) || ' ('
                  || pg_size_pretty(pg_total_relation_size('big.campaign_recipients')) || ' with indexes)'"""
    )
    samples.add("recalc_size", size)
    log.info(f"   loaded: {size}")
    attach = "SELECT campaign_counters.attach('big.campaign_recipients', 'big.marketing_campaigns')"
    samples.add("recalc", server.timed(attach), method="attach")
    server.timed(GROUP_BY)  # warm the cache
    for round_ in range(1, p.recalc_repeat + 1):
        times = {
            "group_by": server.timed(GROUP_BY),
            "group_by_serial": server.timed(GROUP_BY, setup=SERIAL),
            "recalc_clean": server.timed(RECALC),
        }
        server.execute(ZERO)
        times["recalc_dirty"] = server.timed(RECALC)
        for method, seconds in times.items():
            samples.add("recalc", seconds, method=method, round=round_)
        log.info(f"   round {round_}: " + ", ".join(f"{m} {t:.3f} s" for m, t in times.items()))
    server.execute(ZERO)
    samples.add("recalc_changed", server.query(RECALC), after="zeroed counters")
    loop = "SELECT bench.seed_loop('big.campaign_recipients', 'big.marketing_campaigns')"
    samples.add("recalc", server.timed(loop), method="loop")
    samples.add("recalc_changed", server.query(RECALC), after="seed loop")
    with server.connect() as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM big.marketing_campaigns")]
    script = work / "seed_loop.sql"
    script.write_text("BEGIN;\n" + "".join(CLIENT_LOOP_STEP.format(id=i) for i in ids) + "COMMIT;\n")
    _, wall = server.psql_file(script)
    samples.add("recalc", wall, method="loop_client")
    log.info(f"   seed loop {samples.one('recalc', method='loop'):.2f} s, from a client {wall:.2f} s")
    server.query(RECALC)
    drift = server.query("SELECT count(*) FROM campaign_counters.verify_campaign_counters()")
    log.info(f"check recalc / campaign_counters: verify_campaign_counters(): {drift} rows")
    samples.add(
        "check",
        f"verify_campaign_counters(): {drift} rows",
        context="recalc, after the seed loop and a recalc",
        variant="campaign_counters",
    )
    server.execute("SELECT campaign_counters.detach('big.campaign_recipients')")


def load(p: Profile) -> None:
    """The big tables in schema big, loaded without their indexes and constraints, then indexed."""
    with server.connect(search_path="big") as conn:
        conn.execute("CREATE SCHEMA big")
        conn.execute(server.REFERENCE_SCHEMA.read_text())
        for statement in (
            """ALTER TABLE campaign_recipients DROP CONSTRAINT campaign_recipients_pkey,
                   DROP CONSTRAINT campaign_recipients_whatsapp_message_id_key,
                   DROP CONSTRAINT campaign_recipients_campaign_id_fkey""",
            "DROP INDEX campaign_recipients_campaign_id_idx",
            f"""SELECT bench.load('big.campaign_recipients', 'big.marketing_campaigns', 'campaign',
                                  {p.recalc_recipients}, {p.recalc_campaigns})""",
            """ALTER TABLE campaign_recipients ADD PRIMARY KEY (id), ADD UNIQUE (whatsapp_message_id),
                   ADD FOREIGN KEY (campaign_id) REFERENCES marketing_campaigns (id) ON DELETE CASCADE""",
            "CREATE INDEX campaign_recipients_campaign_id_idx ON campaign_recipients (campaign_id)",
            "VACUUM (ANALYZE) campaign_recipients, marketing_campaigns",
            "CHECKPOINT",
        ):
            conn.execute(statement)
