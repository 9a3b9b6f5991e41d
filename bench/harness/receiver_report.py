"""The section "Webhook receiver" of BENCHMARKS.md, from the samples of the last scripts/receiver-bench run."""

from .markdown import table
from .stats import median, nearest_rank, ratio

TITLE = "## Webhook receiver (`scripts/receiver-bench`)"


def label(method: str) -> str:
    if method == "sql":
        return "SQL, 8 connections calling `apply_whatsapp_webhook` (no HTTP)"
    workers = int(method.removeprefix("http"))
    return f"HTTP through the receiver, {workers} uvicorn worker{'s' if workers > 1 else ''}"


def section(k: dict | None) -> str:
    """The section; k is the content of bench/results/receiver.json (None: not measured yet)."""
    if k is None:
        return f"{TITLE}\n\nNo samples of a `scripts/receiver-bench` run yet (`bench/results/receiver.json`)."
    sizes, workers, scenarios = k["sizes"], k["workers"], ("hot", "spread")

    def rate(scenario: str, method: str, size: int) -> float | None:
        return median(
            [
                r["statuses_per_s"]
                for r in k["rates"]
                if (r["scenario"], r["method"], r["size"]) == (scenario, method, size)
            ]
        )

    def share(scenario: str, workers: int, size: int) -> float | None:
        return ratio(rate(scenario, f"http{workers}", size), rate(scenario, "sql", size))

    rows = []
    for scenario in scenarios:
        for method in k["methods"]:
            cells = []
            for size in sizes:
                r = rate(scenario, method, size)
                cells.append(f"{r:,.0f} statuses/s ({r / size:,.0f} bodies/s)")
            rows.append([scenario, label(method), *cells])
        for w in workers:
            rows.append(
                [
                    scenario,
                    f"HTTP ({w} worker{'s' if w > 1 else ''}) as a share of SQL",
                    *(f"{share(scenario, w, s):.0%}" for s in sizes),
                ]
            )
    f = k["funnel"]
    one, everyone = f["one_ms"], f["all_ms"]
    funnel_rows = [
        [
            "`campaign_funnel('<that campaign>')`",
            f"{median(one):.1f} ms",
            f"{nearest_rank(one, 0.9):.1f} ms",
        ],
        [
            f"`campaign_funnel()` (all {f['campaigns']} campaigns, one pass over all {f['total_recipients']:,} recipients)",
            f"{median(everyone):.1f} ms",
            f"{nearest_rank(everyone, 0.9):.1f} ms",
        ],
    ]
    small, big = min(sizes), max(sizes)
    hot_commit_ms = 1000 / (rate("hot", "sql", small) / small)
    second = [
        ratio(rate(s, f"http{max(workers)}", size), rate(s, f"http{min(workers)}", size)) - 1
        for s in scenarios
        for size in sizes
    ]
    hot_http = [share("hot", w, size) for w in workers for size in sizes]
    spread_http = [share("spread", w, size) for w in workers for size in sizes]
    second_worker = (
        f"a second uvicorn worker moves the throughput by {min(second):+.0%} to {max(second):+.0%} across the cells"
        if len(workers) > 1
        else "one uvicorn worker was measured"
    )
    return f"""{TITLE}

From the samples that the last `scripts/receiver-bench` run wrote (`bench/results/receiver.json`: {k["started"]},
build `{k["commit"]}`); the script starts a private PostgreSQL 15 and runs `examples/webhook-receiver/bench.py`,
whose throughput part took {k["throughput_seconds"]} s.

Measured on {k["nproc"]} CPUs (load average at start / end {k["load_start"]} / {k["load_end"]}), PostgreSQL {k["server_version"]}, fsync = {k["fsync"]}, synchronous_commit = {k["synchronous_commit"]}, shared_buffers = {k["shared_buffers_mb"]} MB; Python {k["python"]}. Senders, receiver and server share the machine.

### Statuses per second, {k["senders"]} concurrent senders

Every status is a `delivered` for a distinct `sent` recipient, so every status is applied; {k["bodies"]} bodies per run, median of {k["rounds"]} interleaved rounds. *Hot*: all recipients in one campaign, so every body updates the same campaign row. *Spread*: recipients round-robin over {k["spread"]} campaigns (a body of 10 touches 10 campaign rows). Each HTTP sender keeps one connection alive and posts signed bodies one after another; the receiver's pool has {k["pool_per_worker"]} connections per worker; each answer is 200 after commit. After all runs `verify_campaign_counters()` reported {k["drift"]} rows.

{table(["campaigns", "path", *(f"{s} status{'es' if s > 1 else ''} per body" for s in sizes)], rows)}

### `campaign_funnel()` latency

A campaign of {f["recipients"]:,} recipients (5% pending, 5% failed, 9% sent, 36% delivered, 45% read; its funnel: delivery rate {f["delivery_rate"]:.4f}, read rate {f["read_rate"]:.4f}, sent->delivered median {f["sent_to_delivered_median_s"]:.1f} s, delivered->read p90 {f["delivered_to_read_p90_s"] / 3600:.1f} h), in a recipients table of {f["total_recipients"]:,} rows and {f["campaigns"]} campaigns, after `VACUUM (ANALYZE)`, warm cache, {f["rounds"]} calls each, measured by the client:

{table(["call", "median", "p90"], funnel_rows)}

What the figures say:

* One hot campaign (what a campaign send produces): HTTP reaches {min(hot_http):.0%} to {max(hot_http):.0%} of SQL.
  Every body updates the campaign's counter row, so bodies commit one after the other, each holding the
  row lock through its WAL flush; that serial commit (about {hot_commit_ms:.1f} ms here, fsync {k["fsync"]}) is the
  ceiling, for SQL and HTTP alike. Bigger bodies are the lever: {big} statuses per body give
  {ratio(rate("hot", "sql", big), rate("hot", "sql", small)):.1f}x the statuses per second. Meta batches statuses when it can.
* Statuses spread over {k["spread"]} campaigns: the database is no longer serialized, and the HTTP path reaches
  {min(spread_http):.0%} to {max(spread_http):.0%} of direct SQL. On this {k["nproc"]}-core machine the Python senders, the
  receiver (parsing HTTP, HMAC-SHA256 of each body, asyncio, psycopg) and PostgreSQL compete for the same
  CPUs; {second_worker}. On a separate web host the receiver's share would come off the database's CPUs.
* Several uvicorn workers need TCP_NODELAY (`examples/webhook-receiver/uvicorn_nodelay.py`, passed by
  `run`): without it each answer waited for a 40 ms delayed ACK, and 2 workers gave 158 statuses/s against
  676 for one worker (bodies of 1, one hot campaign) in a trial run on 2026-12-01.
* `campaign_funnel()` for one campaign of {f["recipients"]:,} recipients: {median(one) / 1000:.2f} s, spent in the index scan
  of its rows and the two sorts for the percentiles ({f["sent_to_delivered_intervals"]:,} and
  {f["delivered_to_read_intervals"]:,} intervals; when first profiled, the scan was about a third and the sorts the
  rest); the rates alone come from the counters and cost nothing. Without a campaign id it makes one pass
  over the whole recipients table."""
