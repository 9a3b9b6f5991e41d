"""Command line of the benchmark (scripts/bench): measure a profile into a results dir, then render BENCHMARKS.md."""

import argparse
import dataclasses
import os
import shutil
import time
from pathlib import Path

from . import dataset, log, render, server
from .profiles import PROFILES, WORKER_SETTINGS, from_env
from .samples import Samples
from .workloads import bulk, deferred, instructions, memory, recalc, single_row, webhook

BENCH_DIR = server.PGDATA.parent
# soak.json, receiver.json, ingest.jsonl: the samples of the scripts that measure on their own.
OWN_SCRIPTS_SAMPLES = server.REPO_ROOT / "bench/results"
SECTIONS = ("1", "2", "3", "5", "4", "6", "7")  # the order of the workloads (memory before the big recount;
# 7 stops the server)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Benchmark of campaign_counters against no trigger, the hand-written limits and the two "
        "PL/pgSQL peers, on a private PostgreSQL. Sizes: bench/harness/profiles.py, each overridable "
        "as BENCH_<FIELD> (BENCH_RECIPIENTS, BENCH_PGBENCH_SECONDS, ..., BENCH_PG_SETTINGS).",
    )
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        default=os.environ.get("BENCH_SCALE", "full"),
        help="size profile (default full, or BENCH_SCALE)",
    )
    parser.add_argument(
        "--quick",
        action="store_const",
        const="small",
        dest="profile",
        help="the small profile: checks the harness in a couple of minutes",
    )
    parser.add_argument(
        "--sections",
        default=os.environ.get("BENCH_SECTIONS", ",".join(sorted(SECTIONS))),
        help="workloads to run, e.g. 1,3 (default all; BENCH_SECTIONS)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=os.environ.get("BENCH_RESULTS"),
        help="samples directory (default bench/results/full for the full profile, "
        f"{BENCH_DIR}/results-<profile> otherwise; BENCH_RESULTS)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=os.environ.get("BENCH_OUTPUT"),
        help=f"report (default BENCHMARKS.md for the full profile, {BENCH_DIR}/BENCHMARKS-<profile>.md "
        "otherwise; BENCH_OUTPUT)",
    )
    parser.add_argument("--render", action="store_true", help="only write the report again from the stored samples")
    parser.add_argument(
        "--keep-server",
        action="store_true",
        default=os.environ.get("BENCH_KEEP_SERVER") == "1",
        help="leave the server running afterwards (BENCH_KEEP_SERVER=1)",
    )
    args = parser.parse_args()
    full = args.profile == "full"
    args.results = args.results or (
        server.REPO_ROOT / "bench/results/full" if full else BENCH_DIR / f"results-{args.profile}"
    )
    args.output = args.output or (
        server.REPO_ROOT / "BENCHMARKS.md" if full else BENCH_DIR / f"BENCHMARKS-{args.profile}.md"
    )
    args.sections = {s for s in args.sections.replace(",", " ").split()}
    return args


def machine() -> dict:
    """The machine, and the build of the extension that is measured."""
    cpu = next(
        line.split(": ", 1)[1]
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("model name")
    )
    kb = int(
        next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:"))
    )
    build = server.pg_sh("cc_build_id", capture=True)
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory": f"{kb / 1048576:.1f} GiB", "commit": build}


def measure(args: argparse.Namespace) -> None:
    profile = from_env(args.profile)
    p = profile
    log.info(
        f"profile {p.name}: {p.recipients} recipients / {p.campaigns} campaigns, bulk {p.bulk_rows} / "
        f"{p.bulk_campaigns}, pgbench {p.pgbench_seconds}s, webhook {p.webhook_size} x {p.webhook_batches}, "
        f"recalc {p.recalc_recipients} / {p.recalc_campaigns}"
    )
    work = BENCH_DIR / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.monotonic()
    run = {
        "profile": dataclasses.asdict(p),
        "sections": sorted(args.sections),
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_start": server.loadavg(),
        "pg_version": os.environ.get("PG_VERSION", "15"),
        "pgdata": str(server.PGDATA),
        "port": os.environ["PGPORT"],
        **machine(),
    }
    log.info("building and installing the extension (release)")
    server.pg_sh("cc_install")
    log.info(f"starting the server on port {run['port']} in {server.PGDATA} ({' '.join(p.pg_settings)})")
    server.pg_sh("cc_server_start", *p.pg_settings)
    try:
        samples = Samples.start(args.results, run)
        dataset.load(p)
        run.update(dataset.facts())
        samples.save_run()
        workloads = {
            "1": lambda: bulk.run(p, samples),
            "2": lambda: single_row.run(p, samples),
            "3": lambda: webhook.run(p, samples, work),
            "5": lambda: memory.run(p, samples),
            "4": lambda: recalc.run(p, samples, work),
            "6": lambda: deferred.run(p, samples),
            "7": lambda: instructions.run(p, samples, work),
        }
        for section in SECTIONS:
            if section == "6" and section in args.sections:
                # On a server of its own, with the background worker preloaded.
                log.info(f"restarting the server with {' '.join(WORKER_SETTINGS)} for workload 6")
                server.pg_sh("cc_server_start", *p.pg_settings, *WORKER_SETTINGS)
                dataset.load(p)
            if section in args.sections:
                samples.add("load", server.loadavg(), workload=section)
                workloads[section]()
        run.update(load_end=server.loadavg(), elapsed_seconds=round(time.monotonic() - started))
        samples.save_run()
    finally:
        if not args.keep_server:
            server.pg_sh("cc_server_stop")


def main() -> None:
    args = arguments()
    if not args.render:
        measure(args)
    elif not (args.results / "run.json").exists():
        raise SystemExit(f"bench: no samples in {args.results}; run scripts/bench without --render first")
    results = args.results.resolve()
    name = results.relative_to(server.REPO_ROOT) if results.is_relative_to(server.REPO_ROOT) else results
    render.write(args.results, OWN_SCRIPTS_SAMPLES, args.output, f"{name}/")
    log.info(f"report: {args.output}")


if __name__ == "__main__":
    main()
