"""Workload 3: webhook bodies against separate calls and a hand-written batch UPDATE."""

import collections
import hashlib
import json
from pathlib import Path

from .. import check, log, server
from ..profiles import Profile
from ..samples import Samples

METHODS = ("webhook", "separate", "values", "values_cc")


def run(profile: Profile, samples: Samples, work: Path) -> None:
    p = profile
    log.info(f"3. webhook bodies of {p.webhook_size} statuses, {p.webhook_batches} batches per method")
    server.fresh("campaign_counters")
    # Distinct recipients that are 'sent' now, in random order over all campaigns, cut into one set
    # per (method, batch). Each gets 'delivered' or 'read', at a time after its sent_at.
    wanted = p.webhook_size * len(METHODS) * p.webhook_batches
    server.execute(
        "SELECT setseed(0.5)",
        f"""CREATE TABLE bench.webhook_rows AS
            SELECT (ARRAY['webhook', 'separate', 'values', 'values_cc'])[(k / {p.webhook_size}) % 4 + 1] AS method,
                   k / ({p.webhook_size} * 4) + 1 AS batch,
                   whatsapp_message_id AS mid, phone_number,
                   CASE WHEN k % 2 = 0 THEN 'delivered' ELSE 'read' END AS status,
                   extract(epoch FROM sent_at)::bigint + 30 + k % 600 AS ts
            FROM (SELECT whatsapp_message_id, phone_number, sent_at, row_number() OVER (ORDER BY random()) - 1 AS k
                  FROM campaign_recipients WHERE status = 'sent') s
            WHERE k < {wanted}""",
    )
    got = server.query("SELECT count(*) FROM bench.webhook_rows")
    if got != wanted:
        raise RuntimeError(f"only {got} recipients are 'sent'; lower BENCH_WEBHOOK_SIZE")
    with server.connect() as conn:
        rows = conn.execute("SELECT method, batch, mid, phone_number, status, ts FROM bench.webhook_rows ORDER BY ts")
        batches = collections.defaultdict(list)
        for method, batch, *status in rows:
            batches[method, batch].append(status)
    for (method, batch), statuses in batches.items():
        (work / f"{method}_{batch}.sql").write_text(WRITERS[method](statuses))
    server.settle()
    for batch in range(1, p.webhook_batches + 1):
        # campaign_counters attached: the webhook body, then separate calls, then the hand-written
        # batch with the trigger; then without any trigger, the hand-written batch (the limit).
        for method in ("webhook", "separate", "values_cc"):
            measure(samples, work, method, batch)
        check.counters(samples, f"webhook batch {batch}", "campaign_counters")
        server.use_variant("none")
        measure(samples, work, "values", batch)
        server.use_variant("campaign_counters")  # recounts what the untracked batch changed
    record_outcomes(samples, work)
    check.counters(samples, "webhook, end", "campaign_counters")


def measure(samples: Samples, work: Path, method: str, batch: int) -> None:
    statements, wall = server.psql_file(work / f"{method}_{batch}.sql", work / f"{method}_{batch}.out")
    samples.add("webhook", statements, method=method, batch=batch, measure="statements")
    samples.add("webhook", wall, method=method, batch=batch, measure="psql call")
    log.info(f"   batch {batch} {method}: {statements:.3f} s in statements, {wall:.3f} s for the psql call")


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def webhook_body(statuses: list) -> str:
    """The raw POST body as Meta sends it (one entry, one change, every status of the batch)."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "statuses": [
            {
                "id": mid,
                "status": status,
                "timestamp": str(ts),
                "recipient_id": phone.lstrip("+"),
                "conversation": {
                    "id": hashlib.md5(mid.encode()).hexdigest(),
                    "origin": {"type": "marketing"},
                },
                "pricing": {"billable": True, "pricing_model": "CBP", "category": "marketing"},
            }
            for mid, phone, status, ts in statuses
        ],
    }
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}],
    }
    return (
        "SELECT outcome, count(*) FROM campaign_counters.apply_whatsapp_webhook("
        f"{literal(json.dumps(body))}::jsonb) GROUP BY outcome;\n"
    )


def separate_calls(statuses: list) -> str:
    return "".join(
        f"SELECT campaign_counters.apply_recipient_status({literal(mid)}, {literal(status)}, to_timestamp({ts}));\n"
        for mid, _, status, ts in statuses
    )


def values_update(statuses: list) -> str:
    values = ", ".join(f"({literal(mid)}, {literal(status)}, to_timestamp({ts}))" for mid, _, status, ts in statuses)
    return f"""UPDATE campaign_recipients r SET status = v.status,
       delivered_at = least(r.delivered_at, v.ts),
       read_at = CASE WHEN v.status = 'read' THEN least(r.read_at, v.ts) ELSE r.read_at END
  FROM (VALUES {values}) AS v (mid, status, ts) WHERE r.whatsapp_message_id = v.mid;
"""


WRITERS = {
    "webhook": webhook_body,
    "separate": separate_calls,
    "values": values_update,
    "values_cc": values_update,
}


def record_outcomes(samples: Samples, work: Path) -> None:
    """What the calls reported (outcomes of the webhook bodies and of the separate calls) and the rows they left."""
    webhook, separate = collections.Counter(), collections.Counter()
    for out in work.glob("webhook_*.out"):
        for line in out.read_text().splitlines():
            outcome, count = line.split("|")
            webhook[outcome] += int(count)
    for out in work.glob("separate_*.out"):
        separate.update(line for line in out.read_text().splitlines() if line)
    applied = server.query(
        """SELECT count(*) FROM campaign_recipients r JOIN bench.webhook_rows w ON w.mid = r.whatsapp_message_id
           WHERE w.method IN ('webhook', 'separate') AND r.status = w.status"""
    )
    samples.add("webhook_outcomes", dict(webhook), method="webhook")
    samples.add("webhook_outcomes", dict(separate), method="separate")
    samples.add("webhook_applied", applied)
    log.info(
        f"   webhook outcomes: {dict(webhook)}; separate calls: {dict(separate)}; rows with the status applied: {applied}"
    )
