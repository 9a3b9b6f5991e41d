"""The private PostgreSQL of the benchmark: scripts/lib/pg.sh for the server, psycopg, psql and pgbench for work."""

import os
import re
import subprocess
import time
from pathlib import Path

import psycopg

from . import log

REPO_ROOT = Path(os.environ["REPO_ROOT"])
PG_BIN = Path(os.environ["PG_BIN"])
PGDATA = Path(os.environ["CC_PGDATA"])
SERVER_LOG = Path(f"{PGDATA}.log")
BENCH_SRC = REPO_ROOT / "bench"
REFERENCE_SCHEMA = REPO_ROOT / "tests/fixtures/reference_schema.sql"
# psql and pgbench say only what matters; psycopg ignores notices anyway.
CLIENT_ENV = {**os.environ, "PGOPTIONS": f"{os.environ.get('PGOPTIONS', '')} -c client_min_messages=warning"}


def pg_sh(function: str, *args: str, capture: bool = False) -> str | None:
    """Runs one function of scripts/lib/pg.sh (cc_install, cc_server_start, ...); its output if captured."""
    script = 'source "$0" && "$@"'
    command = ["bash", "-c", script, str(REPO_ROOT / "scripts/lib/pg.sh"), function, *args]
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE if capture else None, text=True)
    return done.stdout.strip() if capture else None


def connect(search_path: str | None = None, options: str = "") -> psycopg.Connection:
    """A new session (a fresh backend, as each psql call of the timed steps had), autocommit."""
    if search_path:
        options += f" -c search_path={search_path},public"
    return psycopg.connect(autocommit=True, options=options.strip())


def query(sql: str, search_path: str | None = None):
    """The first column of the first row of one statement."""
    with connect(search_path) as conn:
        row = conn.execute(sql).fetchone()
        return row[0] if row else None


def execute(*statements: str, search_path: str | None = None) -> None:
    """Runs statements one after the other in one session, each in its own transaction."""
    with connect(search_path) as conn:
        for statement in statements:
            conn.execute(statement)


def timed(sql: str, setup: str = "") -> float:
    """Seconds of one statement and its commit in a fresh session, seen from the client.

    Like psql's \\timing (what the shell harness measured): the connection is not included.
    """
    with connect() as conn:
        if setup:
            conn.execute(setup)
        started = time.perf_counter()
        conn.execute(sql)
        return time.perf_counter() - started


def psql_file(path: Path, output: Path | None = None) -> tuple[float, float]:
    """Runs a psql script; returns the sum of psql's \\timing over its statements and the wall
    time of the whole psql call (connection included). Query results go to output."""
    command = [str(PG_BIN / "psql"), "-X", "-v", "ON_ERROR_STOP=1", "-q", "-At"]
    command += ["-o", str(output or os.devnull), "-c", "\\timing on", "-f", str(path)]
    started = time.perf_counter()
    done = subprocess.run(command, env=CLIENT_ENV, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"psql -f {path} failed: {done.stderr[-2000:]}")
    times = [float(ms) for ms in re.findall(r"^Time: ([0-9.]+) ms", done.stdout, re.MULTILINE)]
    if not times:
        raise RuntimeError(f"psql -f {path}: no timing in its output")
    return sum(times) / 1000, wall


def pgbench(script: Path, seconds: int, clients: int, lo: int, hi: int, options: str) -> float:
    """Transactions per second of one pgbench run (-M prepared) of script with the given PGOPTIONS."""
    command = [str(PG_BIN / "pgbench"), "-n", "-M", "prepared", "-T", str(seconds), "-c", str(clients)]
    command += [
        "-j",
        str(min(clients, os.cpu_count() or 1)),
        "-D",
        f"lo={lo}",
        "-D",
        f"hi={hi}",
        "-f",
        str(script),
    ]
    env = {**CLIENT_ENV, "PGOPTIONS": f"{CLIENT_ENV['PGOPTIONS']} {options}"}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed: {(done.stdout + done.stderr)[-2000:]}")
    failed = re.search(r"number of failed transactions: (\d+)", done.stdout)
    if failed and failed.group(1) != "0":
        log.info(f"   pgbench: {failed.group(1)} failed transactions")
    tps = re.search(r"^tps = ([0-9.]+)", done.stdout, re.MULTILINE)
    if not tps:
        raise RuntimeError(f"no tps in pgbench output: {done.stdout[-2000:]}")
    return float(tps.group(1))


def settle(search_path: str | None = None) -> None:
    """VACUUM (ANALYZE) and CHECKPOINT before each timed step, so no variant pays for another's garbage."""
    execute("VACUUM (ANALYZE) campaign_recipients, marketing_campaigns", "CHECKPOINT", search_path=search_path)


def use_variant(variant: str, search_path: str | None = None) -> None:
    """Installs one variant's counter maintenance (bench/sql/setup.sql), removing the previous one."""
    execute(f"SELECT bench.use_variant('{variant}')", search_path=search_path)


def fresh(variant: str) -> None:
    """Identical data for the next run: no trigger, reload the saved copy, then the variant."""
    execute("SELECT bench.use_variant('none')", "SELECT bench.reset()", f"SELECT bench.use_variant('{variant}')")
    settle()


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
