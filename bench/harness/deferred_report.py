"""Workload 6's section of BENCHMARKS.md: the deferred counting mode, with its targets."""

from collections.abc import Callable

from .markdown import num, table, times
from .profiles import Profile
from .samples import Samples
from .stats import median, nearest_rank, ratio

Judge = Callable[[float | None, float | None, str], None]


def ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f} ms"


def kib(v: float | None) -> str:
    return "-" if v is None else f"{v / 1024:,.0f} KiB"


def section(s: Samples, p: Profile, judge: Judge) -> str | None:
    """The section, judging the targets through judge (met when its first argument is at most its second);
    None when the run did not measure workload 6."""
    if not s.values("deferred_tps"):
        return None

    def tps(scenario: str, variant: str) -> float | None:
        return median(s.values("deferred_tps", scenario=scenario, variant=variant))

    rows, hot, spread, one = [], *(sc.name for sc in p.deferred_scenarios())
    for sc in p.deferred_scenarios():
        n, f, i, d = (tps(sc.name, v) for v in ("none", "floor", "campaign_counters", "deferred"))
        rows.append(
            [sc.label, num(n), num(f), num(i), num(d), times(ratio(d, n)), times(ratio(d, i)), times(ratio(d, f))]
        )
    label = {sc.name: sc.label for sc in p.deferred_scenarios()}
    n, i, d = (tps(hot, v) for v in ("none", "campaign_counters", "deferred"))
    judge(
        0.75,
        ratio(d, n),
        f"{label[hot]}, deferred: at least 0.75x of none: {times(ratio(d, n))} ({num(d)} vs {num(n)} tps)",
    )
    judge(
        2.0,
        ratio(d, i),
        f"{label[hot]}, deferred: at least 2x immediate: {times(ratio(d, i))} ({num(d)} vs {num(i)} tps)",
    )
    n, d = tps(spread, "none"), tps(spread, "deferred")
    judge(
        0.85,
        ratio(d, n),
        f"{label[spread]}, deferred: at least 0.85x of none: {times(ratio(d, n))} ({num(d)} vs {num(n)} tps)",
    )
    i, d = tps(one, "campaign_counters"), tps(one, "deferred")
    judge(i, d, f"{label[one]}, deferred: at least immediate: {times(ratio(d, i))} ({num(d)} vs {num(i)} tps)")

    hook = {v: median(s.values("hook_tps", variant=v)) for v in ("campaign_counters", "deferred")}
    hook_rows = []
    for v, name in (("campaign_counters", "immediate"), ("deferred", "deferred")):
        applied = s.one("hook_applied", variant=v) or {}
        hook_rows.append(
            [
                name,
                num(hook[v]),
                num(None if hook[v] is None else 10 * hook[v]),
                times(ratio(hook[v], hook["campaign_counters"])),
                f"{applied.get('applied', '-')} of {applied.get('sent', '-')}",
            ]
        )

    worker = s.one("worker", measure="settings") or {}
    ages = s.one("sustained", measure="oldest_pending_age") or []
    sizes = s.one("sustained", measure="delta_bytes") or []
    p50, p99 = nearest_rank(ages, 0.5), nearest_rank(ages, 0.99)
    served = s.one("sustained", measure="worker_serves")
    judge(
        p99,
        1.0,
        f"freshness under the hot load, worker at its default interval: p99 of the oldest pending change's age "
        f"at most 1 s: {'-' if p99 is None else f'{p99:.3f} s'}",
    )
    fresh_rows = [
        ["samples (every 100 ms)", f"{len(ages):,}"],
        [
            "age of the oldest pending change, p50 / p99 / max",
            "-" if not ages else f"{p50:.3f} s / {p99:.3f} s / {max(ages):.3f} s",
        ],
        ["the worker served the database at every sample (`health().worker_serves`)", "yes" if served else "no"],
        ["transactions per second of the sustained load", num(s.one("sustained", measure="tps"))],
        [
            "delta storage (`pending_changes` with its index), at the end",
            kib(s.one("sustained", measure="delta_bytes_end")),
        ],
        ["delta storage, largest sample (every second)", kib(max(sizes) if sizes else None)],
        ["pending rows at the end", num(s.one("sustained", measure="pending_rows_end"))],
    ]
    read_rows = []
    for pending in sorted({r["pending"] for r in s.records if r["kind"] == "current_counters_ms"}):
        cc = s.one("current_counters_ms", method="current_counters", pending=pending) or []
        st = s.one("current_counters_ms", method="stored", pending=pending) or []
        read_rows.append(
            [f"{pending:,}", ms(median(cc)), ms(nearest_rank(cc, 0.9)), ms(median(st)), ms(nearest_rank(st, 0.9))]
        )
    return f"""## 6. Deferred counting: one hot campaign, spread, the worker

The single-row transactions of workload 2 (`bench/pgbench/update.sql`; `floor.sql` for `floor`), median of
{p.pgbench_rounds} interleaved rounds of {p.pgbench_seconds} s, on a server of its own started with
`shared_preload_libraries = {worker.get("preload") or "-"}` (the background worker serving `{worker.get("databases") or "-"}`,
fold interval {worker.get("fold_interval") or "-"}) and the same data. `immediate` is the extension attached as
in workload 2; `deferred` the same pair attached with `mode => 'deferred'`: each statement records its change
per campaign in `campaign_counters.pending_changes` and leaves the campaign row alone, and the worker folds.

{table(["scenario", "none", "floor", "immediate", "deferred", "deferred / none", "deferred / immediate", "deferred / floor"], rows)}

### One hot campaign, webhook bodies of 10 statuses

{p.clients} clients calling `apply_whatsapp_webhook` with bodies of 10 statuses for the hot campaign
(`bench/pgbench/webhook_hot10.sql`: {p.hook_recipients:,} `sent` recipients delivered, then read, 10 per body,
so every status changes its row), median of {p.pgbench_rounds} interleaved rounds of {p.pgbench_seconds} s.

{table(["mode", "bodies/s", "statuses/s", "/ immediate", "statuses that changed their row, of those sent"], hook_rows)}

### Freshness and delta storage under a sustained hot load

{p.clients} clients on the hot campaign in deferred mode for {p.sustained_seconds} s, the worker folding at its
interval; `campaign_counters.health()` sampled every 100 ms for the age of the oldest pending change (0 when
nothing is pending), the size of the delta storage every second.

{table(["", ""], fresh_rows)}

### `current_counters()` of one campaign with pending changes

One campaign of {p.per_campaign:,} recipients attached in deferred mode in a database the worker does not
serve (so nothing is folded meanwhile), with this many pending rows (one per single-row UPDATE); 50 calls
each, prepared, measured by the client, against reading the stored campaign row.

{table(["pending rows", "current_counters() median", "p90", "stored row median", "p90"], read_rows)}"""
