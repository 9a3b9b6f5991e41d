"""Workload 1: bulk INSERT, UPDATE and DELETE of many recipients, one statement each."""

from .. import check, log, server
from ..profiles import Profile
from ..samples import Samples

VARIANTS = ("none", "statement", "campaign_counters", "row")


def run(profile: Profile, samples: Samples) -> None:
    p = profile
    log.info(f"1. bulk INSERT / UPDATE / DELETE of {p.bulk_rows} recipients over {p.bulk_campaigns} campaigns")
    ids = server.query(
        "SELECT '{' || string_agg(id::text, ',' ORDER BY name) || '}' FROM marketing_campaigns WHERE name LIKE 'bulk %'"
    )
    where = f"WHERE campaign_id = ANY ('{ids}'::uuid[])"
    statements = {
        "insert": "INSERT INTO campaign_recipients SELECT * FROM bench.bulk_rows",
        "update": f"UPDATE campaign_recipients SET status = 'sent', sent_at = now() {where}",
        "delete": f"DELETE FROM campaign_recipients {where}",
    }
    for round_ in range(1, p.bulk_repeat + 1):
        # Rotate the order each round so no variant always runs first.
        shift = (round_ - 1) % len(VARIANTS)
        for variant in VARIANTS[shift:] + VARIANTS[:shift]:
            if variant == "row" and round_ > p.row_bulk_repeat:
                continue
            server.use_variant(variant)
            times = {}
            for op, sql in statements.items():
                server.settle()
                times[op] = server.timed(sql)
                samples.add("bulk", times[op], op=op, variant=variant, round=round_)
                if round_ == 1 and op != "insert":
                    check.counters(samples, f"bulk, after the {op.upper()}", variant)
            log.info(f"   round {round_} {variant}: " + ", ".join(f"{op} {t:.3f} s" for op, t in times.items()))
    server.use_variant("none")
