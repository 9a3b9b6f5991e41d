"""Workload 5: time and peak backend memory of an UPDATE of every recipient, and of a tenth of them."""

import threading
import time
from pathlib import Path

from .. import check, log, server
from ..profiles import Profile
from ..samples import Samples

VARIANTS = ("none", "statement", "campaign_counters")
STEP = """UPDATE campaign_recipients SET status = CASE status WHEN 'pending' THEN 'sent' WHEN 'sent' THEN 'delivered'
          WHEN 'delivered' THEN 'read' WHEN 'read' THEN 'failed' ELSE 'pending' END"""


def run(profile: Profile, samples: Samples) -> None:
    p = profile
    log.info(f"5. peak backend memory during an UPDATE of all {p.recipients} recipients")
    tenth = f"{STEP} WHERE phone_number <= '+1650{p.mem_tenth:08d}'"
    for variant in VARIANTS:
        server.fresh(variant)
        measure(samples, variant, "all", STEP)
        check.counters(samples, f"UPDATE of all {p.recipients} recipients", variant)
        server.fresh(variant)
        measure(samples, variant, "tenth", tenth)
    server.use_variant("none")


def measure(samples: Samples, variant: str, part: str, sql: str) -> None:
    """Runs sql in a fresh backend, sampling its VmHWM and RssAnon (kB) every 50 ms from /proc."""
    conn = server.connect()
    status = Path(f"/proc/{conn.info.backend_pid}/status")
    seconds = []

    def statement() -> None:
        conn.execute("SELECT pg_sleep(0.5)")
        started = time.perf_counter()
        conn.execute(sql)
        seconds.append(time.perf_counter() - started)
        conn.execute("SELECT pg_sleep(0.5)")

    runner = threading.Thread(target=statement)
    runner.start()
    peak = {"VmHWM": 0, "RssAnon": 0}
    while runner.is_alive():
        for line in status.read_text().splitlines():
            name, _, value = line.partition(":")
            if name in peak:
                peak[name] = max(peak[name], int(value.split()[0]))
        time.sleep(0.05)
    runner.join()
    conn.close()
    if not seconds:
        raise RuntimeError(f"memory run {variant}/{part} failed")
    for name, value in (("time", seconds[0]), ("VmHWM", peak["VmHWM"]), ("RssAnon", peak["RssAnon"])):
        samples.add("memory", value, variant=variant, part=part, measure=name)
    log.info(
        f"   {variant} {part}: {seconds[0]:.2f} s, VmHWM {peak['VmHWM'] / 1024:.1f} MB, "
        f"peak RssAnon {peak['RssAnon'] / 1024:.1f} MB"
    )
