"""Posts WhatsApp status webhooks the way Meta does: JSON bodies signed with X-Hub-Signature-256.

Used by the tests, bench.py and `scripts/demo --http`. As a program it posts the bodies of the
demo's table demo_webhook_bodies:

    python meta_sender.py --url http://127.0.0.1:8000/webhook --database-url ... --batches 0-5
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import os
import sys
import time
import urllib.parse


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def status_item(message_id: str, status: str, timestamp: int, **extra) -> dict:
    item = {"id": message_id, "status": status, "timestamp": str(timestamp), "recipient_id": "16505550000"}
    item.update(extra)
    return item


def webhook(statuses: list[dict]) -> dict:
    """A status webhook body, exactly in Meta's shape."""
    return {
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                    "statuses": statuses,
                },
            }],
        }],
    }


def encode(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


class Poster:
    """One keep-alive HTTP connection to the receiver, reopened after errors."""

    def __init__(self, url: str, secret: bytes, timeout: float = 60):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = parts.hostname, parts.port or 80, parts.path or "/"
        self.secret, self.timeout = secret, timeout
        self.connection: http.client.HTTPConnection | None = None

    def post(self, body: bytes, sign: bool = True, headers: dict | None = None) -> tuple[int, str]:
        all_headers = {"Content-Type": "application/json"}
        if sign:
            all_headers["X-Hub-Signature-256"] = signature(self.secret, body)
        all_headers.update(headers or {})
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.connection.request("POST", self.path, body=body, headers=all_headers)
                response = self.connection.getresponse()
                text = response.read().decode(errors="replace")
                if response.getheader("connection", "").lower() == "close":
                    self.close()
                return response.status, text
            except (ConnectionError, http.client.HTTPException):
                # A kept-alive connection the server closed meanwhile: retry once on a new one.
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the receiver's POST /webhook URL")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"), help="where demo_webhook_bodies is")
    parser.add_argument("--batches", default="0-", help="FIRST-LAST or FIRST- (inclusive)")
    parser.add_argument("--delay", type=float, default=float(os.environ.get("CC_DEMO_DELAY", "0.5")),
                        help="seconds between bodies, so a person can watch the counters move")
    args = parser.parse_args()
    import psycopg  # only the demo mode needs the database

    first, _, last = args.batches.partition("-")
    secret = os.environ["WHATSAPP_APP_SECRET"].encode()
    with psycopg.connect(args.database_url) as conn:
        bodies = conn.execute(
            "SELECT batch, body::text FROM demo_webhook_bodies WHERE batch >= %s AND (%s::int IS NULL OR batch <= %s) ORDER BY batch",
            (int(first), int(last) if last else None, int(last) if last else None),
        ).fetchall()
    poster = Poster(args.url, secret)
    for batch, body in bodies:
        for attempt in range(10):  # what Meta does, faster: retry until a 200
            code, _ = poster.post(body.encode())
            if code == 200:
                break
            time.sleep(1)
        statuses = body.count('"status"')
        print(f"demo: body {batch} ({statuses} statuses) -> HTTP {code}", flush=True)
        time.sleep(args.delay)
    poster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
