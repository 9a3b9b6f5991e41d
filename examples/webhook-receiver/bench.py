"""Statuses per second through the receiver (HTTP, signed bodies, 8 concurrent senders) against
the same bodies sent straight over SQL by 8 connections, for bodies of 1 and 10 statuses; and the
latency of campaign_funnel() for a campaign of 100,000 recipients.

Run by scripts/receiver-bench, which starts a private PostgreSQL with the extension attached to the
reference tables and passes --database-url. Writes the raw samples as JSON (--results), which
scripts/bench renders into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from meta_sender import Poster, encode, status_item, webhook  # noqa: E402

SECRET = "bench-secret"
POOL_PER_WORKER = 8  # the receiver's database connections per uvicorn worker
APPLY = "SELECT outcome, count(*) FROM campaign_counters.apply_whatsapp_webhook(%s::jsonb, %s::regclass) GROUP BY outcome"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_receiver(database_url: str, workers: int, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, DATABASE_URL=database_url, WHATSAPP_APP_SECRET=SECRET, WHATSAPP_VERIFY_TOKEN="bench",
               PORT=str(port), HOST="127.0.0.1", WEB_CONCURRENCY=str(workers), DB_POOL_MAX=str(POOL_PER_WORKER),
               LOG_LEVEL="warning", PYTHONDONTWRITEBYTECODE="1")
    with open(log, "ab") as out:
        process = subprocess.Popen([str(HERE / "run")], env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return process, base + "/webhook"
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"receiver did not start; see {log}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


class Ids:
    """Message ids of `sent` recipients, handed out once each: all in one hot campaign, or spread
    round-robin over many campaigns (consecutive ids in different campaigns)."""

    def __init__(self, conn, campaigns: list[str], count: int, tag: str):
        self.ids = [f"wamid.bench.{tag}.{i:08d}" for i in range(count)]
        conn.execute("""INSERT INTO campaign_recipients (campaign_id, phone_number, status, whatsapp_message_id, sent_at)
                        SELECT (%s::uuid[])[1 + (i - 1) %% %s], '+1555' || lpad(i::text, 8, '0'), 'sent', id, timestamptz '2026-11-27 09:00+00'
                          FROM unnest(%s::text[]) WITH ORDINALITY AS t(id, i)""", (campaigns, len(campaigns), self.ids))
        self.next = 0

    def take(self, n: int) -> list[str]:
        if self.next + n > len(self.ids):
            raise SystemExit("not enough recipients")
        taken = self.ids[self.next:self.next + n]
        self.next += n
        return taken


def bodies_for(ids: list[str], size: int) -> list[bytes]:
    t = 1_764_234_000
    return [encode(webhook([status_item(i, "delivered", t) for i in ids[k:k + size]])) for k in range(0, len(ids), size)]


def run_http(url: str, bodies: list[bytes], senders: int) -> float:
    local = threading.local()
    errors = []

    def send(body: bytes) -> None:
        if not hasattr(local, "poster"):
            local.poster = Poster(url, SECRET.encode())
        code, text = local.poster.post(body)
        if code != 200:
            errors.append((code, text))

    started = time.perf_counter()
    with ThreadPoolExecutor(senders) as pool:
        list(pool.map(send, bodies))
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, first: {errors[0]}")
    return elapsed


def run_sql(database_url: str, bodies: list[bytes], senders: int) -> float:
    connections = [psycopg.connect(database_url, autocommit=True) for _ in range(senders)]
    free = list(connections)
    lock = threading.Lock()
    local = threading.local()

    def send(body: bytes) -> None:
        if not hasattr(local, "conn"):
            with lock:
                local.conn = free.pop()
        local.conn.execute(APPLY, (body.decode(), None), prepare=True).fetchall()

    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(senders) as pool:
            list(pool.map(send, bodies))
        return time.perf_counter() - started
    finally:
        for conn in connections:
            conn.close()


def funnel_latency(conn, recipients: int, rounds: int) -> dict:
    campaign = str(uuid.uuid4())
    conn.execute("INSERT INTO marketing_campaigns (id, name, total_target_customers) VALUES (%s, 'funnel', %s)",
                 (campaign, recipients))
    # 5% pending, 5% failed, of the rest 90% delivered (3 s to 10 min later) and 60% of those read (up to a day).
    conn.execute("""
        INSERT INTO campaign_recipients (campaign_id, phone_number, status, whatsapp_message_id, sent_at, delivered_at, read_at, failed_at)
        SELECT %s, '+1444' || lpad(i::text, 8, '0'), status, 'wamid.funnel.' || i,
               CASE WHEN status <> 'pending' THEN sent END,
               CASE WHEN status IN ('delivered', 'read') THEN sent + interval '3 s' + random() * interval '10 min' END,
               CASE WHEN status = 'read' THEN sent + interval '15 min' + random() * interval '1 day' END,
               CASE WHEN status = 'failed' THEN sent + interval '2 s' END
          FROM (SELECT i, timestamptz '2026-11-27 09:00+00' + i * interval '20 ms' AS sent,
                       CASE WHEN d < 0.05 THEN 'pending' WHEN d < 0.10 THEN 'failed' WHEN d < 0.19 THEN 'sent'
                            WHEN d < 0.55 THEN 'delivered' ELSE 'read' END AS status
                  FROM (SELECT i, random() AS d FROM generate_series(1, %s) i) s) t""", (campaign, recipients))
    conn.execute("VACUUM (ANALYZE) campaign_recipients")
    conn.execute("VACUUM (ANALYZE) marketing_campaigns")

    def timed(query: str, params=()) -> list[float]:
        conn.execute(query, params).fetchall()  # warm
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            conn.execute(query, params).fetchall()
            times.append((time.perf_counter() - started) * 1000)
        return times

    one = timed("SELECT * FROM campaign_counters.campaign_funnel(%s)", (campaign,))
    everyone = timed("SELECT * FROM campaign_counters.campaign_funnel()")
    total = conn.execute("SELECT count(*) FROM campaign_recipients").fetchone()[0]
    campaigns = conn.execute("SELECT count(*) FROM marketing_campaigns").fetchone()[0]
    row = conn.execute("SELECT delivery_rate, read_rate, sent_to_delivered_median, delivered_to_read_p90 FROM campaign_counters.campaign_funnel(%s)", (campaign,)).fetchone()
    # What the two percentile sorts of the funnel work on: one interval per recipient with both times.
    intervals = conn.execute("""SELECT count(delivered_at - sent_at), count(read_at - delivered_at)
                                  FROM campaign_recipients WHERE campaign_id = %s""", (campaign,)).fetchone()
    return {"recipients": recipients, "rounds": rounds, "one_ms": one, "all_ms": everyone,
            "total_recipients": total, "campaigns": campaigns,
            "delivery_rate": float(row[0]), "read_rate": float(row[1]),
            "sent_to_delivered_median_s": row[2].total_seconds(), "delivered_to_read_p90_s": row[3].total_seconds(),
            "sent_to_delivered_intervals": intervals[0], "delivered_to_read_intervals": intervals[1]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--bodies", type=int, default=2000, help="bodies per measured run")
    parser.add_argument("--spread", type=int, default=100, help="campaigns of the spread scenario")
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per method and size (median reported)")
    parser.add_argument("--workers", default="1,2", help="uvicorn worker counts to measure")
    parser.add_argument("--funnel-recipients", type=int, default=100_000)
    parser.add_argument("--funnel-rounds", type=int, default=20)
    parser.add_argument("--results", type=Path, required=True, help="where the samples go (JSON)")
    parser.add_argument("--commit", default="?", help="the build measured (scripts/lib/pg.sh cc_build_id)")
    args = parser.parse_args()
    started_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())

    workers = [int(w) for w in args.workers.split(",")]
    sizes = (1, 10)
    methods = ["sql"] + [f"http{w}" for w in workers]
    log = Path(tempfile.mkdtemp(prefix="receiver-bench-")) / "receiver.log"
    conn = psycopg.connect(args.database_url, autocommit=True)
    settings = dict(conn.execute("SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers', 'server_version')").fetchall())
    scenarios = {"hot": 1, "spread": args.spread}
    pools = {}
    for scenario, count in scenarios.items():
        campaigns = [str(uuid.uuid4()) for _ in range(count)]
        conn.execute("INSERT INTO marketing_campaigns (id, name) SELECT id, %s || n FROM unnest(%s::uuid[]) WITH ORDINALITY AS t(id, n)",
                     (scenario, campaigns))
        needed = args.bodies * sum(sizes) * args.rounds * len(methods) + 100 * 10 * len(methods)
        pools[scenario] = Ids(conn, campaigns, needed, scenario)
    conn.execute("VACUUM (ANALYZE) campaign_recipients")

    receivers = {f"http{w}": start_receiver(args.database_url, w, log) for w in workers}
    rates = []
    started = time.time()
    try:
        for scenario, ids in pools.items():
            # Warm-up: every path once.
            for method in methods:
                bodies = bodies_for(ids.take(1000), 10)
                run_sql(args.database_url, bodies, args.senders) if method == "sql" else run_http(receivers[method][1], bodies, args.senders)
            for round_ in range(args.rounds):
                for size in sizes:
                    for method in methods:
                        batch = ids.take(args.bodies * size)
                        bodies = bodies_for(batch, size)
                        if method == "sql":
                            elapsed = run_sql(args.database_url, bodies, args.senders)
                        else:
                            elapsed = run_http(receivers[method][1], bodies, args.senders)
                        applied = conn.execute("SELECT count(*) FROM campaign_recipients WHERE whatsapp_message_id = ANY(%s) AND status = 'delivered'",
                                               (batch,)).fetchone()[0]
                        if applied != len(batch):
                            raise SystemExit(f"{method} size {size}: {applied} of {len(batch)} statuses applied")
                        rate = len(batch) / elapsed
                        rates.append({"scenario": scenario, "method": method, "size": size, "round": round_ + 1,
                                      "statuses_per_s": round(rate, 1)})
                        print(f"bench: {scenario} round {round_ + 1} {method} size {size}: {rate:.0f} statuses/s", file=sys.stderr, flush=True)
    finally:
        for process, _ in receivers.values():
            stop(process)
    drift = conn.execute("SELECT count(*) FROM campaign_counters.verify_campaign_counters()").fetchone()[0]
    throughput_seconds = time.time() - started
    funnel = funnel_latency(conn, args.funnel_recipients, args.funnel_rounds)
    conn.close()

    samples = {
        "started": started_at,
        "commit": args.commit,
        "nproc": os.cpu_count(),
        "load_start": load_start,
        "load_end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "server_version": settings["server_version"],
        "fsync": settings["fsync"],
        "synchronous_commit": settings["synchronous_commit"],
        "shared_buffers_mb": int(settings["shared_buffers"]) * 8 // 1024,
        "python": platform.python_version(),
        "bodies": args.bodies,
        "rounds": args.rounds,
        "senders": args.senders,
        "pool_per_worker": POOL_PER_WORKER,
        "spread": args.spread,
        "workers": workers,
        "sizes": list(sizes),
        "methods": methods,
        "rates": rates,
        "drift": drift,
        "throughput_seconds": round(throughput_seconds),
        "funnel": funnel,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(samples, indent=1) + "\n")
    print(f"bench: samples written to {args.results}", file=sys.stderr)
    print(f"bench: throughput part took {throughput_seconds:.0f} s; receiver log {log}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
