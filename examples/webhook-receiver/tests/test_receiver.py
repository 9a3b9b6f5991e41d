"""The receiver end to end: a real uvicorn server on a loopback port, a real PostgreSQL 15 with
campaign_counters, signed HTTP requests as Meta sends them, and the page in headless Chromium."""

from __future__ import annotations

import html.parser
import json
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import APP_SECRET, REPO, VERIFY_TOKEN
from meta_sender import Poster, encode, status_item, webhook

SECRET = APP_SECRET.encode()
RANK = {"sent": 1, "failed": 2, "delivered": 3, "read": 4, "played": 4}
STATUS_OF_RANK = {0: "pending", 1: "sent", 2: "failed", 3: "delivered", 4: "read"}

FIXTURE_FILES = sorted(
    [*(REPO / "tests/fixtures/whatsapp").glob("*.json"), *(REPO / "tests/fixtures/realworld").glob("*.json"),
     *(REPO / "tests/fixtures/realworld/placeholder").glob("*.json")])
FIXTURE_FILES = [f for f in FIXTURE_FILES if f.name != "expected.json"]  # a list of items, not a body


def new_campaign(db, name: str, recipients: int, status: str = "sent") -> tuple[str, list[str]]:
    """A campaign whose recipients have been sent their messages; returns its id and message ids."""
    campaign = str(uuid.uuid4())
    db.execute("INSERT INTO marketing_campaigns (id, name, total_target_customers) VALUES (%s, %s, %s)",
               (campaign, name, recipients))
    ids = [f"wamid.{name}.{i:06d}" for i in range(recipients)]
    db.execute("""INSERT INTO campaign_recipients (campaign_id, phone_number, status, whatsapp_message_id, sent_at)
                  SELECT %s, '+1555' || lpad(i::text, 7, '0'), %s, id, CASE WHEN %s <> 'pending' THEN timestamptz '2026-11-27 09:00+00' END
                    FROM unnest(%s::text[]) WITH ORDINALITY AS t(id, i)""", (campaign, status, status, ids))
    return campaign, ids


def stream(ids: list[str], seed: int, duplicates: float = 0.15) -> list[dict]:
    """Meta's statuses for these messages: delivered, most read, some failed; shuffled, some twice."""
    rng = random.Random(seed)
    events = []
    base = 1_764_230_400  # 2025-11-27 08:00 UTC
    for n, message_id in enumerate(ids):
        sent = base + n
        dice = rng.random()
        if dice < 0.05:
            events.append(status_item(message_id, "failed", sent + 2, errors=[{"code": 131049, "title": "ecosystem"}]))
            continue
        events.append(status_item(message_id, "delivered", sent + rng.randint(1, 60)))
        if dice > 0.4:
            events.append(status_item(message_id, "read", sent + rng.randint(61, 9000)))
    events += [e for e in events if rng.random() < duplicates]
    rng.shuffle(events)
    return events


def bodies_of(events: list[dict], seed: int, largest: int = 10) -> list[bytes]:
    rng = random.Random(seed)
    bodies, i = [], 0
    while i < len(events):
        size = rng.randint(1, largest)
        bodies.append(encode(webhook(events[i:i + size])))
        i += size
    return bodies


def expected_counters(ids: list[str], events: list[dict], start_rank: int = 1) -> dict:
    rank = dict.fromkeys(ids, start_rank)
    for event in events:
        rank[event["id"]] = max(rank[event["id"]], RANK[event["status"]])
    statuses = [STATUS_OF_RANK[r] for r in rank.values()]
    return {
        "pending": statuses.count("pending"),
        "sent": sum(s in ("sent", "delivered", "read") for s in statuses),
        "delivered": sum(s in ("delivered", "read") for s in statuses),
        "read": statuses.count("read"),
        "failed": statuses.count("failed"),
    }


def post_all(receiver, bodies: list[bytes], senders: int = 8) -> list[int]:
    local = threading.local()

    def send(body: bytes) -> int:
        if not hasattr(local, "poster"):
            local.poster = Poster(receiver.url, SECRET)
        return local.poster.post(body)[0]

    with ThreadPoolExecutor(senders) as pool:
        return list(pool.map(send, bodies))


# --- GET /webhook: Meta's verification handshake -------------------------------------------------

def test_handshake_returns_the_challenge_for_the_right_token(receiver):
    code, text = receiver.get(f"/webhook?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444")
    assert (code, text) == (200, "1158201444")


@pytest.mark.parametrize("query", [
    "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1158201444",
    f"hub.mode=unsubscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444",
    "hub.mode=subscribe&hub.challenge=1158201444",
    f"hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444",
    "",
])
def test_handshake_refuses_anything_else(receiver, query):
    code, text = receiver.get("/webhook?" + query)
    assert code == 403
    assert "1158201444" not in text


# --- POST /webhook: signatures and size ----------------------------------------------------------

def test_unsigned_and_wrongly_signed_bodies_change_nothing(db, receiver):
    campaign, ids = new_campaign(db, "signatures", 3)
    body = encode(webhook([status_item(ids[0], "read", 1_764_230_500), status_item("wamid.nobody", "sent", 1_764_230_500)]))
    other = encode(webhook([status_item(ids[1], "read", 1_764_230_500)]))
    before = db.snapshot()
    poster = Poster(receiver.url, SECRET)
    forged = Poster(receiver.url, b"not-the-app-secret")
    assert poster.post(body, sign=False)[0] == 401
    assert forged.post(body)[0] == 403
    assert poster.post(body, sign=False, headers={"X-Hub-Signature-256": "sha256="})[0] == 403
    assert poster.post(body, sign=False, headers={"X-Hub-Signature-256": "sha1=" + "0" * 40})[0] == 403
    signed_other = Poster(receiver.url, SECRET)
    from meta_sender import signature
    assert signed_other.post(body, sign=False, headers={"X-Hub-Signature-256": signature(SECRET, other)})[0] == 403
    # One byte changed after signing.
    assert poster.post(body[:-1] + b" ", sign=False, headers={"X-Hub-Signature-256": signature(SECRET, body)})[0] == 403
    assert db.snapshot() == before
    # The same body, signed: applied.
    assert poster.post(body) == (200, "ok")
    assert db.counters(campaign) == {"pending": 0, "sent": 3, "delivered": 1, "read": 1, "failed": 0}
    assert db.value("SELECT count(*) FROM campaign_counters.parked_events WHERE whatsapp_message_id = 'wamid.nobody'") == 1
    assert "401 no X-Hub-Signature-256" in receiver.log_text()
    assert "403 wrong X-Hub-Signature-256" in receiver.log_text()


def test_bodies_over_the_limit_get_413_and_change_nothing(db, receiver):
    campaign, ids = new_campaign(db, "oversized", 1)
    statuses = [status_item(ids[0], "read", 1_764_230_500, padding="x" * 1000)]
    body = encode(webhook(statuses))
    body = body[:-1] + b"," + b'"filler":"' + b"y" * (3 * 1024 * 1024 - len(body)) + b'"}'
    assert len(body) > 3 * 1024 * 1024
    before = db.snapshot()
    poster = Poster(receiver.url, SECRET)
    assert poster.post(body)[0] == 413
    # Without Content-Length (chunked), the limit holds while reading.
    import http.client
    connection = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=30)
    from meta_sender import signature
    connection.request("POST", "/webhook", body=iter([body[i:i + 65536] for i in range(0, len(body), 65536)]),
                       headers={"X-Hub-Signature-256": signature(SECRET, body), "Content-Type": "application/json"},
                       encode_chunked=True)
    assert connection.getresponse().status == 413
    connection.close()
    assert db.snapshot() == before
    # Just under the limit is fine.
    small = encode(webhook(statuses))
    assert Poster(receiver.url, SECRET).post(small)[0] == 200
    assert db.counters(campaign)["read"] == 1


def test_a_signed_body_that_is_not_a_webhook_is_a_400(db, receiver):
    poster = Poster(receiver.url, SECRET)
    before = db.snapshot()
    assert poster.post(b'{"object": "whatsapp_business_account", "entry": ')[0] == 400
    assert poster.post(b'{"object": "page", "entry": []}')[0] == 400
    assert poster.post(b'[1, 2, 3]')[0] == 400
    assert db.snapshot() == before


# --- POST /webhook: every fixture -----------------------------------------------------------------

def message_statuses(body) -> list[dict]:
    found = []
    for entry in body.get("entry", []) if isinstance(body, dict) else []:
        for change in entry.get("changes", []):
            if change.get("field") == "messages":
                found += [s for s in (change.get("value") or {}).get("statuses", []) if isinstance(s, dict)]
    return found


def test_every_fixture_signed_gives_exact_counters(db, receiver):
    assert len(FIXTURE_FILES) >= 40, FIXTURE_FILES
    bodies = {f.name: f.read_bytes() for f in FIXTURE_FILES}
    items = [s for raw in bodies.values() for s in message_statuses(json.loads(raw))]
    ids = sorted({s["id"] for s in items if isinstance(s.get("id"), str) and s["id"]})
    assert len(ids) >= 20
    # One id stays unknown until after its statuses came: they are parked, then applied.
    late = "wamid.ID"
    assert late in ids
    campaign, _ = new_campaign(db, "fixtures", 0)
    db.execute("""INSERT INTO campaign_recipients (campaign_id, phone_number, status, whatsapp_message_id)
                  SELECT %s, '+1650' || i, 'pending', id FROM unnest(%s::text[]) WITH ORDINALITY AS t(id, i)""",
               (campaign, [i for i in ids if i != late]))
    poster = Poster(receiver.url, SECRET)
    for name, raw in bodies.items():
        code, text = poster.post(raw)
        assert code == 200, f"{name}: HTTP {code} {text}"
    db.execute("INSERT INTO campaign_recipients (campaign_id, phone_number, whatsapp_message_id) VALUES (%s, '+1650000', %s)",
               (campaign, late))
    # Meta retries: everything once more changes nothing.
    before = db.snapshot()
    for name, raw in bodies.items():
        assert poster.post(raw)[0] == 200, name
    assert db.snapshot() == before

    # Each recipient ends at the highest-ranked status its valid items carry (played counts as read).
    valid = [s for s in items if s.get("status") in RANK and isinstance(s.get("id"), str)
             and isinstance(s.get("timestamp"), str) and s["timestamp"].isdigit()]
    expected = expected_counters(ids, valid, start_rank=0)
    assert db.counters(campaign) == expected
    assert expected["read"] > 0 and expected["failed"] > 0 and expected["delivered"] > expected["read"]
    assert db.drift() == []
    assert db.value("SELECT status FROM campaign_recipients WHERE whatsapp_message_id = %s", (late,)) != "pending"


# --- the database goes away mid-run ---------------------------------------------------------------

def test_database_stopped_mid_run_gives_5xx_and_reposting_leaves_exact_counters(db, receiver):
    campaign, ids = new_campaign(db, "outage", 300)
    events = stream(ids, seed=7)
    bodies = bodies_of(events, seed=8)
    # Two senders: one stops after a quarter of its bodies until the database is down (so some of
    # its bodies surely meet the outage), the other posts on regardless (so some meet the shutdown
    # while in flight).
    paced, free = bodies[0::2], bodies[1::2]
    codes = {"paced": [None] * len(paced), "free": [None] * len(free)}
    database_down = threading.Event()

    def send(name: str, own: list[bytes], pause_at: int | None):
        poster = Poster(receiver.url, SECRET)
        for i, body in enumerate(own):
            if i == pause_at:
                database_down.wait(60)
            codes[name][i] = poster.post(body)[0]
            time.sleep(0.005)

    senders = [threading.Thread(target=send, args=("paced", paced, len(paced) // 4)),
               threading.Thread(target=send, args=("free", free, None))]
    for sender in senders:
        sender.start()
    while sum(c == 200 for c in codes["paced"] if c) < len(paced) // 4:
        time.sleep(0.01)
    db.server("stop")
    database_down.set()
    deadline = time.monotonic() + 60
    while sum(c is not None and c >= 500 for c in codes["paced"]) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    db.server("start")
    for sender in senders:
        sender.join()
    all_codes = codes["paced"] + codes["free"]
    failed = [body for body, code in zip(paced + free, all_codes) if code != 200]
    assert sum(c >= 500 for c in codes["paced"]) >= 3, codes
    assert set(all_codes) <= {200, 500, 502, 503, 504}, all_codes
    assert "503 database unavailable" in receiver.log_text() or "503 no database connection" in receiver.log_text()
    receiver.wait_healthy()
    # Meta retries what failed; then, at least once delivery, everything again.
    assert post_all(receiver, failed) == [200] * len(failed)
    assert post_all(receiver, bodies) == [200] * len(bodies)
    assert db.counters(campaign) == expected_counters(ids, events)
    assert db.drift() == []


# --- 200 concurrent POSTs on one hot campaign -----------------------------------------------------

def test_200_concurrent_posts_on_one_hot_campaign_leave_exact_counters(db, receiver):
    campaign, ids = new_campaign(db, "hot", 400)
    events = stream(ids, seed=11, duplicates=0.3)
    bodies = bodies_of(events, seed=12, largest=8)[:200]
    while len(bodies) < 200:
        bodies.append(bodies[len(bodies) % 7])  # duplicates of earlier bodies
    sent_events = [e for body in bodies for e in json.loads(body)["entry"][0]["changes"][0]["value"]["statuses"]]
    barrier = threading.Barrier(200)

    retried = []

    def send(body: bytes) -> int:
        poster = Poster(receiver.url, SECRET, timeout=120)
        barrier.wait()
        try:
            for _ in range(5):  # as Meta would, should a request wait longer than the pool timeout
                code = poster.post(body)[0]
                if code < 500:
                    return code
                retried.append(code)
            return code
        finally:
            poster.close()

    with ThreadPoolExecutor(200) as pool:
        codes = list(pool.map(send, bodies))
    assert codes == [200] * 200
    assert len(retried) < 20, retried
    # Events whose row another body held were carried over (stored, never waited for); the sweep
    # that production schedules every few seconds applies them (a row still held a moment longer
    # is carried again, so sweep as production would: until nothing is left).
    waiting = "SELECT count(*) FROM campaign_counters.parked_events WHERE whatsapp_message_id = ANY(%s)"
    for _ in range(20):
        db.execute("SELECT campaign_counters.apply_parked_events()")
        if db.value(waiting, (list(ids),)) == 0:
            break
        time.sleep(0.25)
    assert db.value(waiting, (list(ids),)) == 0
    assert db.counters(campaign) == expected_counters(ids, sent_events)
    assert db.drift() == []


# --- GET /campaigns in headless Chromium ----------------------------------------------------------

class FunnelPage(html.parser.HTMLParser):
    """Reads the rows of the funnel table: {campaign id: {column: text}}."""

    def __init__(self):
        super().__init__()
        self.rows, self.row, self.column, self.refresh = {}, None, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "meta" and attrs.get("http-equiv") == "refresh":
            self.refresh = attrs.get("content")
        elif tag == "tr" and "data-campaign" in attrs:
            self.row = self.rows.setdefault(attrs["data-campaign"], {})
        elif tag == "td" and self.row is not None:
            self.column = attrs.get("class")

    def handle_endtag(self, tag):
        if tag == "tr":
            self.row = None
        elif tag == "td":
            self.column = None

    def handle_data(self, data):
        if self.row is not None and self.column:
            self.row[self.column] = self.row.get(self.column, "") + data


def render(url: str) -> str:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is not installed (scripts/setup installs it)"
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        result = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--dump-dom", url],
            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def page_rows(receiver) -> FunnelPage:
    page = FunnelPage()
    page.feed(render(receiver.base + "/campaigns"))
    return page


def test_campaigns_page_in_chromium_shows_the_numbers(db, receiver):
    campaign, ids = new_campaign(db, "page", 10)
    t = 1_764_230_400
    events = [status_item(ids[0], "delivered", t + 10), status_item(ids[0], "read", t + 70),
              status_item(ids[1], "delivered", t + 30), status_item(ids[1], "read", t + 330),
              status_item(ids[2], "delivered", t + 20), status_item(ids[3], "delivered", t + 40),
              status_item(ids[4], "failed", t + 5)]
    db.execute("UPDATE campaign_recipients SET sent_at = to_timestamp(%s) WHERE campaign_id = %s", (t, campaign))
    assert Poster(receiver.url, SECRET).post(encode(webhook(events)))[0] == 200

    page = page_rows(receiver)
    assert page.refresh == "1"
    row = page.rows[campaign]
    # Worked by hand: 10 recipients, 9 sent (5 of them still only sent), 4 delivered, 2 read, 1 failed.
    assert {k: row[k] for k in ("recipients", "messages_pending", "messages_sent", "messages_delivered",
                                "messages_read", "messages_failed")} == {
        "recipients": "10", "messages_pending": "0", "messages_sent": "9", "messages_delivered": "4",
        "messages_read": "2", "messages_failed": "1"}
    assert row["delivery_rate"] == "40.0"       # 4 of (9 + 1)
    assert row["read_rate"] == "50.0"           # 2 of 4
    assert row["failure_rate"] == "10.0"        # 1 of 10
    assert row["sent_to_delivered_median"] == "25.0 s"  # 10, 20, 30, 40
    assert row["delivered_to_read_median"] == "180.0 s"  # 60, 300

    # Every campaign on the page matches campaign_funnel() and the counters.
    funnel = {r[0]: r for r in db.rows("SELECT campaign_id, messages_sent, messages_delivered, messages_read, messages_failed, recipients FROM campaign_counters.campaign_funnel()")}
    assert set(page.rows) == set(funnel)
    for campaign_id, (_, sent, delivered, read, failed, recipients) in funnel.items():
        shown = page.rows[campaign_id]
        assert [shown["messages_sent"], shown["messages_delivered"], shown["messages_read"], shown["messages_failed"],
                shown["recipients"]] == [str(sent), str(delivered), str(read), str(failed), str(recipients)]

    # The numbers move with the next statuses.
    assert Poster(receiver.url, SECRET).post(encode(webhook([status_item(ids[2], "read", t + 99)])))[0] == 200
    assert page_rows(receiver).rows[campaign]["messages_read"] == "3"


def test_one_log_line_per_body_with_outcome_counts(receiver):
    lines = [line for line in receiver.log_text().splitlines() if "webhook: 200 statuses=" in line]
    assert lines
    assert any("applied=" in line and "duplicate=" in line for line in lines), lines[:5]


# --- the README's main.py, as a user would copy it --------------------------------------------------

def readme_main_py() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Receiving Meta's webhooks"):]
    start = section.index("```python\n# main.py") + len("```python\n")
    return section[start:section.index("```", start)]


def test_the_readme_main_py_works(db, tmp_path):
    from conftest import Receiver, free_port
    (tmp_path / "main.py").write_text(readme_main_py())
    port = free_port()
    log = tmp_path / "uvicorn.log"
    env = dict(os.environ, DATABASE_URL=db.url.replace("user=postgres", "user=webhook_receiver"),
               WHATSAPP_APP_SECRET=APP_SECRET, WHATSAPP_VERIFY_TOKEN=VERIFY_TOKEN, PYTHONDONTWRITEBYTECODE="1")
    python = Path(os.environ.get("CC_VENV", "/opt/campaign_counters/venv")) / "bin/python"
    with open(log, "wb") as out:
        process = subprocess.Popen([str(python), "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", str(port)],
                                   cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Receiver(port, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                code, text = server.get(f"/webhook?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=42")
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, log.read_text()
                time.sleep(0.1)
        assert (code, text) == (200, "42")
        assert server.get("/webhook?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=42")[0] == 403
        campaign, ids = new_campaign(db, "readme", 2)
        body = encode(webhook([status_item(ids[0], "read", 1_764_234_000), status_item(ids[1], "failed", 1_764_234_000)]))
        before = db.snapshot()
        poster = Poster(server.url, SECRET)
        assert poster.post(body, sign=False)[0] == 401
        assert Poster(server.url, b"forged").post(body)[0] == 403
        assert poster.post(b"x" * (3 * 1024 * 1024 + 1))[0] == 413
        assert poster.post(b"not json")[0] == 400
        assert db.snapshot() == before
        assert poster.post(body) == (200, "ok")
        assert poster.post(body) == (200, "ok")
        assert db.counters(campaign) == {"pending": 0, "sent": 1, "delivered": 1, "read": 1, "failed": 1}
        assert db.drift() == []
        assert "webhook: 200 {'applied': 2}" in log.read_text()
        assert "webhook: 200 {'duplicate': 2}" in log.read_text()
    finally:
        process.terminate()
        process.wait(timeout=20)
