"""Workload 7: CPU instructions per single-row status transaction of each variant, counted by callgrind.

Throughput on a shared machine moves by tens of percent between rounds; instruction counts do not. Each
variant runs workload 2's statement (`bench/pgbench/update.sql`, `floor.sql` for floor) prepared, each
execution its own transaction, in a single-user backend under `valgrind --tool=callgrind` on the
benchmark's data directory (the server stopped). Two runs of different lengths per variant: their
difference divided by the difference in transactions leaves out start-up and shutdown.
"""

import re
import subprocess
from pathlib import Path

from .. import log, server
from ..profiles import Profile
from ..samples import Samples

VARIANTS = ("none", "floor", "row", "statement", "campaign_counters", "deferred")
RUNS = (300, 1300)  # transactions of the short and the long run
SINGLE_USER_SETTINGS = ("shared_buffers=1GB", "synchronous_commit=off")


def prepared(script: Path) -> str:
    """The pgbench script's statement as a PREPARE taking the recipient number as $1."""
    lines = [line for line in script.read_text().splitlines() if not line.startswith(("--", "\\"))]
    statement = " ".join(lines).strip().rstrip(";")
    return f"PREPARE step(int) AS {statement.replace(':n', '$1')};"


def single_user(work: Path, name: str, sql: str, callgrind: bool) -> int | None:
    """Runs sql in a single-user backend on the benchmark's data; with callgrind, its instruction count."""
    script, out = work / f"{name}.sql", work / f"{name}.callgrind"
    script.write_text(sql)
    script.chmod(0o644)
    out.unlink(missing_ok=True)
    command = [str(server.PG_BIN / "postgres"), "--single", "-D", str(server.PGDATA)]
    for setting in SINGLE_USER_SETTINGS:
        command += ["-c", setting]
    command.append("postgres")
    if callgrind:
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command]
    # as_postgres (scripts/lib/pg.sh): PostgreSQL refuses to run as root.
    wrapper = 'source "$0" && script=$1 && shift && as_postgres "$@" < "$script"'
    done = subprocess.run(
        ["bash", "-c", wrapper, str(server.REPO_ROOT / "scripts/lib/pg.sh"), str(script), *command],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0 or "ERROR:" in done.stdout + done.stderr:
        raise RuntimeError(f"single-user run {name} failed: {(done.stdout + done.stderr)[-2000:]}")
    if not callgrind:
        return None
    summary = re.search(r"^summary: (\d+)", out.read_text(), re.MULTILINE)
    if not summary:
        raise RuntimeError(f"no callgrind summary in {out}")
    return int(summary.group(1))


def run(profile: Profile, samples: Samples, work: Path) -> None:
    p = profile
    log.info("7. instructions per single-row transaction (callgrind, single-user backend)")
    server.pg_sh("cc_server_stop")
    work = work / "callgrind"
    work.mkdir(exist_ok=True)
    work.chmod(0o777)  # the backend, run as postgres, writes its callgrind output here
    floor_step = prepared(server.BENCH_SRC / "pgbench/floor.sql")
    update_step = prepared(server.BENCH_SRC / "pgbench/update.sql")
    first = 1
    for variant in VARIANTS:
        single_user(
            work,
            f"setup-{variant}",
            f"SELECT bench.use_variant('{variant}');\nVACUUM (ANALYZE) campaign_recipients, marketing_campaigns;\n",
            callgrind=False,
        )
        prepare = floor_step if variant == "floor" else update_step
        counts = []
        for transactions in RUNS:
            recipients = range(first, first + transactions)
            first += transactions
            body = "\n".join(f"EXECUTE step({n % p.recipients + 1});" for n in recipients)
            counts.append(single_user(work, f"{variant}-{transactions}", f"{prepare}\n{body}\n", callgrind=True))
        per_transaction = (counts[1] - counts[0]) / (RUNS[1] - RUNS[0])
        samples.add("instructions", per_transaction, variant=variant)
        log.info(f"   {variant}: {per_transaction:,.0f} instructions per transaction")
    single_user(work, "setup-none", "SELECT bench.use_variant('none');\n", callgrind=False)
