"""Fixtures: a private PostgreSQL 15 (started by scripts/receiver-test), a database with the
extension attached to the reference tables, and the receiver itself started by its `run` script on
a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest

HERE = Path(__file__).resolve().parent
RECEIVER = HERE.parent
REPO = RECEIVER.parent.parent
sys.path.insert(0, str(RECEIVER))

APP_SECRET = "test-app-secret-7f3a"
VERIFY_TOKEN = "test-verify-token-91c2"
DATABASE = "receiver_test"


def pg_env() -> dict:
    for name in ("CC_PGDATA", "CC_PGPORT", "CC_SOCKDIR"):
        if not os.environ.get(name):
            pytest.exit(f"{name} is not set: run these tests with scripts/receiver-test", returncode=2)
    return {name: os.environ[name] for name in ("CC_PGDATA", "CC_PGPORT", "CC_SOCKDIR")}


def conninfo(dbname: str) -> str:
    env = pg_env()
    return f"host={env['CC_SOCKDIR']} port={env['CC_PGPORT']} user=postgres dbname={dbname}"


class Database:
    """SQL access for the tests, and stopping/starting the server (scripts/lib/pg.sh)."""

    def __init__(self):
        self.url = conninfo(DATABASE)

    def rows(self, query: str, params=None) -> list[tuple]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def value(self, query: str, params=None):
        return self.rows(query, params)[0][0]

    def execute(self, query: str, params=None) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(query, params)

    def server(self, action: str) -> None:
        function = {"stop": "cc_server_stop", "start": "cc_server_restart"}[action]
        subprocess.run(["bash", "-c", f'source "{REPO}/scripts/lib/pg.sh" && {function}'], check=True, env=os.environ)

    def drift(self) -> list[tuple]:
        """Counters that differ from a recount with the counter rules (this test's own query), plus
        whatever verify_campaign_counters() reports."""
        ours = self.rows("""
            SELECT c.id::text, c.messages_pending, c.messages_sent, c.messages_delivered, c.messages_read, c.messages_failed,
                   r.pending, r.sent, r.delivered, r.read, r.failed
              FROM marketing_campaigns c
              LEFT JOIN LATERAL (
                   SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
                          count(*) FILTER (WHERE status IN ('sent', 'delivered', 'read')) AS sent,
                          count(*) FILTER (WHERE status IN ('delivered', 'read')) AS delivered,
                          count(*) FILTER (WHERE status = 'read') AS read,
                          count(*) FILTER (WHERE status = 'failed') AS failed
                     FROM campaign_recipients WHERE campaign_id = c.id) r ON true
             WHERE (c.messages_pending, c.messages_sent, c.messages_delivered, c.messages_read, c.messages_failed)
                   IS DISTINCT FROM (r.pending, r.sent, r.delivered, r.read, r.failed)""")
        return ours + self.rows("SELECT * FROM campaign_counters.verify_campaign_counters()")

    def counters(self, campaign: str) -> dict:
        row = self.rows(
            "SELECT messages_pending, messages_sent, messages_delivered, messages_read, messages_failed FROM marketing_campaigns WHERE id = %s",
            (campaign,))[0]
        return dict(zip(("pending", "sent", "delivered", "read", "failed"), row))

    def snapshot(self) -> list[tuple]:
        """Everything a webhook can write."""
        return self.rows("""
            SELECT 'r', to_jsonb(r)::text FROM campaign_recipients r
            UNION ALL SELECT 'c', to_jsonb(c)::text FROM marketing_campaigns c
            UNION ALL SELECT 'p', to_jsonb(p)::text FROM campaign_counters.parked_events p
            UNION ALL SELECT 'f', to_jsonb(f)::text FROM campaign_counters.recipient_failures f
            ORDER BY 1, 2""")


@pytest.fixture(scope="session")
def db() -> Database:
    with psycopg.connect(conninfo("postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        conn.execute("DROP ROLE IF EXISTS webhook_receiver")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    database = Database()
    with psycopg.connect(database.url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION campaign_counters")
        conn.execute((REPO / "tests/fixtures/reference_schema.sql").read_text())
        conn.execute("SELECT campaign_counters.attach()")
        # The receiver connects as a role with only the rights the README asks for.
        conn.execute("CREATE ROLE webhook_receiver LOGIN")
        conn.execute("GRANT SELECT, UPDATE ON campaign_recipients TO webhook_receiver")
        conn.execute("GRANT SELECT ON marketing_campaigns TO webhook_receiver")
    return database


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    def __init__(self, port: int, log: Path):
        self.port, self.log = port, log
        self.base = f"http://127.0.0.1:{port}"
        self.url = self.base + "/webhook"

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def log_text(self) -> str:
        return self.log.read_text()

    def wait_healthy(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"receiver not healthy after {seconds} s; log:\n{self.log_text()}")


@pytest.fixture(scope="session")
def receiver(db: Database):
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="receiver-test-", dir=os.environ.get("CC_TMP", "/tmp")))
    log = workdir / "receiver.log"
    env = dict(os.environ, DATABASE_URL=db.url.replace("user=postgres", "user=webhook_receiver"), WHATSAPP_APP_SECRET=APP_SECRET, WHATSAPP_VERIFY_TOKEN=VERIFY_TOKEN,
               PORT=str(port), HOST="127.0.0.1", DB_POOL_TIMEOUT="4", PYTHONDONTWRITEBYTECODE="1")
    with open(log, "wb") as out:
        process = subprocess.Popen([str(RECEIVER / "run")], env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Receiver(port, log)
    try:
        server.wait_healthy()
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        print(f"\nreceiver log ({log}):\n" + "\n".join(log.read_text().splitlines()[-15:]))


def pytest_sessionfinish(session, exitstatus):
    # A run that collected nothing must not pass.
    if session.testscollected == 0 and exitstatus == 0:
        session.exitstatus = 1
