"""The section on webhook ingest against the application's bulk updates, from scripts/ingest-contention's runs."""

from .markdown import table
from .stats import ratio

TITLE = "## Webhook ingest against the application's bulk updates (`scripts/ingest-contention`)"
# What each release does when a webhook meets a recipient row another transaction holds.
BEHAVIOUR = {
    "0.2.0": "waits for held recipient rows",
    "0.3.0": "`SKIP LOCKED`, events of held rows carried over",
}


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def section(runs: list[dict]) -> str:
    """The section; runs are the lines of bench/results/ingest.jsonl, in the order they ran."""
    if not runs:
        return f"{TITLE}\n\nNo samples of `scripts/ingest-contention` yet (`bench/results/ingest.jsonl`)."
    versions = sorted({r["version"] for r in runs}, key=version_key)
    by_version = {v: [r for r in runs if r["version"] == v] for v in versions}
    rows = []
    for v, of in by_version.items():
        builds = ", ".join(sorted({f"`{r['commit']}`" for r in of}))
        name = f"{v} ({BEHAVIOUR[v]}; build {builds})" if v in BEHAVIOUR else f"{v} (build {builds})"
        rows.append(
            [
                name,
                " / ".join(" + ".join(f"{t:.1f}" for t in r["app_tps"]) for r in of),
                " / ".join(f"{r['hook_tps']:.1f}" for r in of),
                " / ".join(str(r["deadlocks"]) for r in of),
                " / ".join(str(r["app_failed"] + r["hook_failed"]) for r in of),
            ]
        )
    first = runs[0]
    dates = sorted({r["started"][:10] for r in runs})
    loads = "; ".join(r["load_start"] for r in runs)
    newest = by_version[versions[-1]]
    carried = " and ".join(str(r["carried"]) for r in newest)
    clean = all(r["parked_left"] == 0 and r["unapplied"] == 0 and r["drift"] == 0 for r in newest)
    outcome = (
        "the sweep at the end applied them, nothing was left parked, every read event was in its row, and verify "
        "found no drift"
        if clean
        else "left parked / read events missing / drifting counters: "
        + ", ".join(f"{r['parked_left']}/{r['unapplied']}/{r['drift']}" for r in newest)
    )
    text = f"""{TITLE}

From the runs of `INGEST_SECONDS={first["seconds"]} INGEST_RESULTS=bench/results/ingest.jsonl scripts/ingest-contention`
stored in `bench/results/ingest.jsonl`: {len(runs)} runs ({", ".join(dates)}), builds taking turns, on a private
PostgreSQL {first["pg"]}, fsync on, release builds, sharing the machine with other work (load average at the
start of each run: {loads}). One campaign of {first["recipients"]:,} recipients; 2 application clients run
`UPDATE campaign_recipients SET status = 'delivered' WHERE whatsapp_message_id IN ({first["ids_per_statement"]} ids)`,
each in its own half of the ids, while 2 clients apply webhook bodies of {first["ids_per_statement"]} `read`
statuses anywhere. Transactions per second as pgbench reports them, run by run:

{table(["build", "application updates/s (two clients)", "webhook bodies/s", "deadlocks", "failed transactions"], rows)}

{versions[-1]} carried {carried} events over in its runs; {outcome}."""
    if len(versions) > 1:
        oldest = by_version[versions[0]]
        app = ratio(mean([sum(r["app_tps"]) for r in newest]), mean([sum(r["app_tps"]) for r in oldest]))
        hook = ratio(mean([r["hook_tps"] for r in newest]), mean([r["hook_tps"] for r in oldest]))
        text += (
            f" Against {versions[0]}, {versions[-1]} runs the application's updates at {app:.2f}x and the webhook "
            f"bodies at {hook:.2f}x (means of the runs)"
        )
        if app > 1 and hook > 1 and any(r["deadlocks"] for r in oldest):
            text += ", because no statement waits a `deadlock_timeout` or is rolled back and retried"
        text += "."
    return text
