"""Size profiles of the benchmark (full, medium, small) and the scenarios derived from them."""

import dataclasses
import os
from dataclasses import dataclass

DEFAULT_PG_SETTINGS = (
    "shared_buffers=4GB",
    "max_wal_size=8GB",
    "checkpoint_timeout=30min",
    "maintenance_work_mem=512MB",
)


@dataclass(frozen=True)
class Profile:
    """Every size of one run; each field can be overridden by BENCH_<FIELD> in the environment."""

    name: str
    recipients: int  # main tables: recipients loaded for workloads 1, 2, 3 and 5 ...
    campaigns: int  # ... over this many campaigns
    bulk_rows: int  # 1. rows of the bulk statements ...
    bulk_campaigns: int  # ... over this many (new) campaigns
    bulk_repeat: int  # ... rounds (median reported)
    pgbench_seconds: int  # 2. duration of each pgbench run ...
    pgbench_rounds: int  # ... rounds per variant and scenario (median reported)
    webhook_size: int  # 3. statuses per webhook body ...
    webhook_batches: int  # ... batches per method (median reported)
    recalc_recipients: int  # 4. recipients of the recount ...
    recalc_campaigns: int  # ... over this many campaigns
    recalc_repeat: int  # ... rounds (median reported; the seed's loop runs once)
    row_bulk_repeat: int = 1  # 1. rounds of the (quadratic) row peer
    clients: int = 8  # 2. the "many clients" case
    pg_settings: tuple[str, ...] = DEFAULT_PG_SETTINGS  # server settings (BENCH_PG_SETTINGS)
    hook_recipients: int = 200_000  # 6. `sent` recipients of the hot campaign the 10-status bodies deliver, then read
    sustained_seconds: int = 300  # 6. the sustained hot load sampled for freshness and delta storage
    current_pending: tuple[int, ...] = (100, 1000, 10_000)  # 6. pending rows when timing current_counters()

    @property
    def per_campaign(self) -> int:
        """Recipients of one main campaign (the hot campaign holds recipients 1..per_campaign)."""
        return -(-self.recipients // self.campaigns)

    @property
    def bulk_per_campaign(self) -> int:
        return -(-self.bulk_rows // self.bulk_campaigns)

    @property
    def mem_tenth(self) -> int:
        """Recipients of the smaller UPDATE of workload 5."""
        return self.recipients // 10

    def deferred_scenarios(self) -> list["Scenario"]:
        """Workload 6: the counting modes side by side, with no trigger and floor."""
        c, everyone, modes = self.clients, self.recipients, ("none", "floor", "campaign_counters", "deferred")
        return [
            Scenario(
                f"hot{c}",
                clients=c,
                hi=self.per_campaign,
                label=f"{c} clients, all on one hot campaign",
                variants=modes,
            ),
            Scenario(
                f"spread{c}", clients=c, hi=everyone, label=f"{c} clients, spread over all campaigns", variants=modes
            ),
            Scenario("spread1", clients=1, hi=everyone, label="1 client, spread over all campaigns", variants=modes),
        ]

    def scenarios(self) -> list["Scenario"]:
        c, everyone = self.clients, self.recipients
        return [
            Scenario("spread1", clients=1, hi=everyone, label="1 client, spread over all campaigns"),
            Scenario(
                f"spread{c}",
                clients=c,
                hi=everyone,
                label=f"{c} clients, spread over all campaigns",
                fillfactor_too=True,
                index_too=True,
            ),
            Scenario(
                f"hot{c}",
                clients=c,
                hi=self.per_campaign,
                label=f"{c} clients, all on one hot campaign",
                fillfactor_too=True,
            ),
            # Not a target: without waiting for WAL flushes, it shows the CPU cost per
            # transaction of each way of keeping counters.
            Scenario(
                "async1",
                clients=1,
                hi=everyone,
                options="-c synchronous_commit=off",
                label="1 client, spread, `synchronous_commit = off` (CPU cost, not a target)",
                index_too=True,
                has_targets=False,
            ),
        ]


@dataclass(frozen=True)
class Scenario:
    """One pgbench case of workload 2: recipients lo..hi updated by this many clients."""

    name: str
    clients: int
    hi: int
    label: str
    lo: int = 1
    options: str = ""  # extra PGOPTIONS of the pgbench run
    fillfactor_too: bool = False  # floor and campaign_counters also run at fillfactor 10
    index_too: bool = False  # floor also runs with enable_seqscan = off (floor_idx)
    has_targets: bool = True  # judged against the targets (section Targets of the report)
    variants: tuple[str, ...] = ("none", "floor", "row", "statement", "campaign_counters")

    def slots(self) -> list[tuple[str, int]]:
        """(variant, fillfactor of marketing_campaigns) run in this scenario, in turn order."""
        slots = [(v, 100) for v in self.variants]
        if self.fillfactor_too:
            slots += [("floor", 10), ("campaign_counters", 10)]
        if self.index_too:
            slots.append(("floor_idx", 100))
        return slots


PROFILES = {
    "full": Profile(
        "full",
        recipients=1_000_000,
        campaigns=100,
        bulk_rows=100_000,
        bulk_campaigns=10,
        bulk_repeat=5,
        pgbench_seconds=7,
        pgbench_rounds=3,
        webhook_size=1000,
        webhook_batches=5,
        recalc_recipients=10_000_000,
        recalc_campaigns=1000,
        recalc_repeat=3,
    ),
    "medium": Profile(
        "medium",
        recipients=200_000,
        campaigns=100,
        bulk_rows=20_000,
        bulk_campaigns=10,
        bulk_repeat=2,
        pgbench_seconds=4,
        pgbench_rounds=2,
        webhook_size=1000,
        webhook_batches=3,
        recalc_recipients=2_000_000,
        recalc_campaigns=1000,
        recalc_repeat=2,
        hook_recipients=50_000,
        sustained_seconds=60,
    ),
    # Checks the harness end to end in a couple of minutes (scripts/bench --quick).
    "small": Profile(
        "small",
        recipients=20_000,
        campaigns=20,
        bulk_rows=2000,
        bulk_campaigns=5,
        bulk_repeat=1,
        pgbench_seconds=2,
        pgbench_rounds=1,
        webhook_size=200,
        webhook_batches=2,
        recalc_recipients=100_000,
        recalc_campaigns=100,
        recalc_repeat=1,
        hook_recipients=20_000,
        sustained_seconds=15,
        current_pending=(100, 1000),
    ),
}

# Workload 6 runs on a server of its own with the background worker: preloaded, serving the
# benchmark's database at its default fold interval.
WORKER_SETTINGS = (
    "shared_preload_libraries=campaign_counters",
    f"campaign_counters.databases={os.environ.get('PGDATABASE', 'postgres')}",
)


def from_env(name: str) -> Profile:
    """The named profile with the BENCH_<FIELD> overrides of the environment applied."""
    profile = PROFILES[name]
    overrides = {}
    for field in dataclasses.fields(Profile):
        value = os.environ.get(f"BENCH_{field.name.upper()}")
        if value is None or field.name == "name":
            continue
        if field.name == "pg_settings":
            overrides[field.name] = tuple(value.split())
        elif field.name == "current_pending":
            overrides[field.name] = tuple(int(v) for v in value.split())
        else:
            overrides[field.name] = int(value)
    return dataclasses.replace(profile, **overrides)


def from_record(record: dict) -> Profile:
    """The profile stored with a run's samples."""
    tuples = {k: tuple(record[k]) for k in ("pg_settings", "current_pending") if k in record}
    return Profile(**{**record, **tuples})
