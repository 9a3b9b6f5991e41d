"""Workload 2: single-row status updates by pgbench, every variant on its own copy of the tables."""

import re

from .. import check, log, server
from ..profiles import Profile, Scenario
from ..samples import Samples

SCAN = re.compile(r"(Seq Scan|Index Scan|Index Only Scan|Bitmap Heap Scan)( using [a-z_]+)? on marketing_campaigns")


def schema(variant: str, fillfactor: int) -> str:
    """The schema holding one variant's copy of the tables."""
    return f"s_{variant}_ff{fillfactor}"


def run(profile: Profile, samples: Samples) -> None:
    # Each variant (and the fillfactor 10 ones) gets its own copy of the tables, reloaded from the
    # same saved rows before each scenario; pgbench reaches it through search_path. So the variants
    # can run interleaved in short rounds (noise from the rest of the machine falls on all of them
    # alike) without reloading between rounds.
    p = profile
    scenarios = p.scenarios()
    all_slots = list(dict.fromkeys(slot for s in scenarios for slot in s.slots()))
    log.info(
        f"2. single-row status updates: pgbench, {p.pgbench_rounds} rounds of {p.pgbench_seconds}s per variant and scenario"
    )
    create_copies(all_slots)
    for scenario in scenarios:
        run_scenario(p, scenario, samples)
    drop_copies(all_slots)
    record_plans(samples)


def create_copies(slots: list[tuple[str, int]]) -> None:
    """Empty tables of their own for each (variant, fillfactor); run_scenario loads them."""
    for variant, ff in slots:
        server.execute(f"CREATE SCHEMA {schema(variant, ff)}")
        server.execute(
            server.REFERENCE_SCHEMA.read_text(),
            f"ALTER TABLE marketing_campaigns SET (fillfactor = {ff})",
            search_path=schema(variant, ff),
        )


def drop_copies(slots: list[tuple[str, int]]) -> None:
    for variant, ff in slots:
        server.use_variant("none", schema(variant, ff))
        server.execute(f"DROP SCHEMA {schema(variant, ff)} CASCADE")


def reload_copy(variant: str, ff: int) -> None:
    """The saved rows again in one variant's copy, with its counter maintenance installed."""
    server.execute(
        "SELECT bench.use_variant('none')",
        "SELECT bench.reset()",
        f"SELECT bench.use_variant('{variant}')",
        "VACUUM (ANALYZE) campaign_recipients, marketing_campaigns",
        search_path=schema(variant, ff),
    )


def run_scenario(profile: Profile, scenario: Scenario, samples: Samples, kind: str = "tps") -> None:
    """Interleaved pgbench rounds of every slot of the scenario, each sample stored as kind."""
    slots = scenario.slots()
    log.info(f"   {scenario.name}: reloading {len(slots)} table copies")
    for variant, ff in slots:
        reload_copy(variant, ff)
    for round_ in range(1, profile.pgbench_rounds + 1):
        line = []
        for i in range(len(slots)):
            variant, ff = slots[(i + round_ - 1) % len(slots)]
            server.settle(schema(variant, ff))
            script = server.BENCH_SRC / "pgbench" / ("floor.sql" if variant.startswith("floor") else "update.sql")
            options = f"-c search_path={schema(variant, ff)},public {scenario.options}"
            if variant == "floor_idx":
                options += " -c enable_seqscan=off"
            tps = server.pgbench(script, profile.pgbench_seconds, scenario.clients, scenario.lo, scenario.hi, options)
            samples.add(kind, tps, scenario=scenario.name, variant=variant, fillfactor=ff, round=round_)
            line.append(f"{variant}/{ff} {tps:.0f}")
        log.info(f"   {scenario.name} round {round_}: " + "; ".join(line))
    for variant, ff in slots:
        check.counters(samples, f"pgbench {scenario.name}, fillfactor {ff}", variant, schema(variant, ff))


def record_plans(samples: Samples) -> None:
    """Which plan the counter UPDATE gets on the small campaigns table, on freshly reloaded tables as in
    the runs above: floor's (EXPLAIN) and the extension's (auto_explain of its trigger's statements)."""
    server.fresh("none")
    floor = (server.BENCH_SRC / "pgbench/floor.sql").read_text()
    floor = "\n".join(line for line in floor.splitlines() if not line.startswith("\\set"))
    floor = floor.replace(":n", "1").replace("WITH u AS", "EXPLAIN WITH u AS")
    with server.connect() as conn:
        plan = "\n".join(row[0] for row in conn.execute(floor))
    samples.add("plan", scan_of(plan), variant="floor")
    server.use_variant("campaign_counters")
    server.settle()
    offset = server.SERVER_LOG.stat().st_size
    server.execute(
        "LOAD 'auto_explain'",
        "SET auto_explain.log_min_duration = 0",
        "SET auto_explain.log_nested_statements = on",
        "UPDATE campaign_recipients SET status = 'read' WHERE whatsapp_message_id = bench.message_id(1)",
        "UPDATE campaign_recipients SET status = 'sent' WHERE whatsapp_message_id = bench.message_id(1)",
    )
    with open(server.SERVER_LOG) as f:
        f.seek(offset)
        lines = f.read().splitlines()
    marker = "Query Text: UPDATE public.marketing_campaigns"
    found = [scan_of("\n".join(lines[i : i + 4])) for i, line in enumerate(lines) if marker in line]
    samples.add("plan", next((f for f in found if f), None), variant="campaign_counters")
    server.use_variant("none")
    server.execute("SELECT bench.reset()")
    log.info(f"   plan of the counter UPDATE: {samples.values('plan')}")


def scan_of(plan: str) -> str | None:
    found = SCAN.search(plan)
    return found.group(0) if found else None
