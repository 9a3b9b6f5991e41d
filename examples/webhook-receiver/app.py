"""Meta WhatsApp Cloud API webhook receiver for campaign_counters.

GET  /webhook    Meta's verification handshake.
POST /webhook    A signed status webhook, applied in one SQL call; 200 once committed.
GET  /campaigns  Each campaign's funnel as a small HTML page that refreshes every second.
GET  /healthz    200 when the database answers.

Configuration (environment):
  DATABASE_URL            libpq connection string or URL (required)
  WHATSAPP_APP_SECRET     the Meta app's secret, key of X-Hub-Signature-256 (required)
  WHATSAPP_VERIFY_TOKEN   the token typed into Meta's webhook settings (required)
  MAX_BODY_BYTES          larger bodies get 413 (default 3 MiB: Meta's payloads are up to 3 MB)
  DB_POOL_MIN, DB_POOL_MAX  connection pool size (default 1 and 10)
  DB_POOL_TIMEOUT         seconds to wait for a pooled connection before answering 503 (default 10)
  RECIPIENTS_TABLE, CAMPAIGNS_TABLE  which attachment to use when several are attached (default: the only one)
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import os
import time
from collections import Counter
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from psycopg_pool import AsyncConnectionPool, PoolTimeout

log = logging.getLogger("webhook_receiver")

MIB = 1024 * 1024


class Settings:
    def __init__(self, env=os.environ):
        missing = [name for name in ("DATABASE_URL", "WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN") if not env.get(name)]
        if missing:
            raise RuntimeError(f"set {', '.join(missing)} in the environment")
        self.database_url = env["DATABASE_URL"]
        self.app_secret = env["WHATSAPP_APP_SECRET"].encode()
        self.verify_token = env["WHATSAPP_VERIFY_TOKEN"]
        self.max_body_bytes = int(env.get("MAX_BODY_BYTES", 3 * MIB))
        self.pool_min = int(env.get("DB_POOL_MIN", 1))
        self.pool_max = int(env.get("DB_POOL_MAX", 10))
        self.pool_timeout = float(env.get("DB_POOL_TIMEOUT", 10))
        self.recipients_table = env.get("RECIPIENTS_TABLE") or None
        self.campaigns_table = env.get("CAMPAIGNS_TABLE") or None


def signature_ok(secret: bytes, body: bytes, header: str) -> bool:
    """X-Hub-Signature-256 is "sha256=" and the hex HMAC-SHA256 of the raw body with the app secret."""
    scheme, _, received = header.partition("=")
    if scheme != "sha256" or not received:
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received.strip().lower())


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing to buffer more than `limit` bytes whatever Content-Length says."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application; uvicorn calls this (`uvicorn --factory app:create_app`)."""
    settings = settings or Settings()
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    # Connections are checked before use, so a database restart costs no request beyond those
    # made while it was down. Autocommit: the one SELECT commits on its own before we answer.
    pool = AsyncConnectionPool(
        settings.database_url,
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        timeout=settings.pool_timeout,
        kwargs={"autocommit": True, "application_name": "webhook-receiver"},
        check=AsyncConnectionPool.check_connection,
        open=False,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        await pool.open(wait=False)  # start even while the database is down; requests get 503
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(title="campaign_counters webhook receiver", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.get("/webhook")
    async def verify(
        mode: str | None = Query(None, alias="hub.mode"),
        token: str | None = Query(None, alias="hub.verify_token"),
        challenge: str | None = Query(None, alias="hub.challenge"),
    ):
        if mode == "subscribe" and token is not None and challenge is not None and hmac.compare_digest(
            token.encode(), settings.verify_token.encode()
        ):
            log.info("webhook: verification handshake accepted")
            return PlainTextResponse(challenge)
        log.warning("webhook: verification handshake refused (mode=%r)", mode)
        return PlainTextResponse("forbidden", status_code=403)

    @app.post("/webhook")
    async def receive(request: Request):
        started = time.perf_counter()

        def done(status: int, what: str, text: str) -> Response:
            log.info("webhook: %d %s (%.1f ms)", status, what, (time.perf_counter() - started) * 1000)
            return PlainTextResponse(text, status_code=status)

        try:
            body = await read_body(request, settings.max_body_bytes)
        except BodyTooLarge:
            return done(413, f"body over {settings.max_body_bytes} bytes", "payload too large")
        header = request.headers.get("x-hub-signature-256")
        if not header:
            return done(401, f"no X-Hub-Signature-256, {len(body)} bytes ignored", "signature required")
        if not signature_ok(settings.app_secret, body, header):
            return done(403, f"wrong X-Hub-Signature-256, {len(body)} bytes ignored", "bad signature")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return done(400, "body is not UTF-8", "body is not UTF-8")

        try:
            async with pool.connection() as conn:
                cursor = await conn.execute(
                    "SELECT outcome, count(*) FROM campaign_counters.apply_whatsapp_webhook(%s::jsonb, %s::regclass) GROUP BY outcome",
                    (text, settings.recipients_table),
                    prepare=True,
                )
                outcomes = Counter({outcome: count for outcome, count in await cursor.fetchall()})
        except PoolTimeout:
            return done(503, "no database connection within the pool timeout", "database unavailable")
        except psycopg.DataError as error:
            # Class 22: the body itself is not a webhook the function accepts (not JSON, wrong
            # shape). Retrying the same bytes cannot help, so this is the sender's error.
            return done(400, f"rejected by the database: {error.sqlstate} {error.diag.message_primary}", "not a WhatsApp webhook body")
        except psycopg.OperationalError as error:
            return done(503, f"database unavailable: {str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__}", "database unavailable")
        except psycopg.Error as error:
            return done(500, f"database error {error.sqlstate}: {error.diag.message_primary or error}", "database error")
        summary = " ".join(f"{name}={outcomes[name]}" for name in sorted(outcomes)) or "no statuses"
        return done(200, f"statuses={sum(outcomes.values())} {summary}", "ok")

    @app.get("/campaigns", response_class=HTMLResponse)
    async def campaigns():
        try:
            async with pool.connection() as conn:
                cursor = await conn.execute(
                    "SELECT * FROM campaign_counters.campaign_funnel(NULL, %s::regclass)",
                    (settings.campaigns_table,),
                )
                columns = [c.name for c in cursor.description]
                rows = await cursor.fetchall()
        except (PoolTimeout, psycopg.OperationalError):
            return HTMLResponse(page("<p class=error>database unavailable</p>"), status_code=503)
        return HTMLResponse(page(funnel_table(columns, rows)))

    @app.get("/healthz")
    async def healthz():
        try:
            async with pool.connection() as conn:
                await conn.execute("SELECT 1")
        except (PoolTimeout, psycopg.Error):
            return PlainTextResponse("database unavailable", status_code=503)
        return PlainTextResponse("ok")

    return app


HEADINGS = {
    "campaign_id": "campaign",
    "recipients": "recipients",
    "messages_pending": "pending",
    "messages_sent": "sent",
    "messages_delivered": "delivered",
    "messages_read": "read",
    "messages_failed": "failed",
    "delivery_rate": "delivered %",
    "read_rate": "read %",
    "failure_rate": "failed %",
    "sent_to_delivered_median": "sent→delivered p50",
    "sent_to_delivered_p90": "p90",
    "delivered_to_read_median": "delivered→read p50",
    "delivered_to_read_p90": "p90",
    "first_sent_at": "first sent",
    "last_event_at": "last event",
}


def cell(column: str, value) -> str:
    if value is None:
        shown = "–"
    elif column.endswith("_rate"):
        shown = f"{value * 100:.1f}"
    elif hasattr(value, "total_seconds"):
        shown = f"{value.total_seconds():.1f} s"
    elif hasattr(value, "isoformat"):
        shown = value.isoformat(sep=" ", timespec="seconds")
    else:
        shown = str(value)
    return f'<td class="{column}">{html.escape(shown)}</td>'


def funnel_table(columns, rows) -> str:
    head = "".join(f"<th>{html.escape(HEADINGS.get(c, c))}</th>" for c in columns)
    body = "".join(
        f'<tr data-campaign="{html.escape(str(row[0]))}">' + "".join(cell(c, v) for c, v in zip(columns, row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table><p>{len(rows)} campaigns</p>"


def page(content: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="1">
<title>Campaign funnels</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }}
th, td {{ padding: .3em .7em; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }}
td.campaign_id {{ text-align: left; font-family: monospace; }}
.error {{ color: #b00; }}
</style></head>
<body><h1>Campaign funnels</h1>
{content}
<p><small>Refreshes every second.</small></p>
</body></html>
"""
