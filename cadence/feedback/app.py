"""The daemon's HTTP interface as an ASGI app (Starlette): one-click unsubscribe, SendGrid's
event webhook, health and metrics.

Handlers only translate HTTP: the checks are pure (`cadence.delivery.unsubscribe`,
`cadence.feedback.webhook`) and the writes are plain functions (`cadence.feedback.ledger`), run in
Starlette's thread pool because the store is synchronous. An error in a handler becomes a 500
for that one request; it never reaches the daemon's scheduler, which runs in another thread.
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Awaitable, Callable
from datetime import timedelta
from functools import wraps
from typing import TYPE_CHECKING

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from cadence import metrics
from cadence.clock import utcnow
from cadence.delivery.unsubscribe import (
    ExpiredToken,
    InvalidToken,
    UnsubscribeClaim,
    check_token,
)
from cadence.feedback import ledger, webhook

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

    from cadence.app import App

log = logging.getLogger("cadence.http")

#: a SendGrid batch is far below this; anything larger is not one (and must not fill memory)
MAX_WEBHOOK_BODY = 16 * 1024 * 1024
#: /healthz answers within this even when the database hangs
HEALTH_TIMEOUT = 5.0

#: the unsubscribe pages carry a capability in their URL: never cached, indexed, framed, or
#: passed on as a Referer
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
}

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;
color:#222}}button{{font-size:1rem;padding:.6rem 1.2rem;border-radius:6px;border:0;
background:#2b59c3;color:#fff;cursor:pointer}}</style></head><body>{body}</body></html>"""

DONE = (
    "<h1>You are unsubscribed</h1><p>You will not get these emails from us any more. "
    "Receipts and answers to your own requests still reach you.</p>"
)
NOT_VALID = "<h1>This link is not valid</h1><p>Nothing was changed.</p>"


def _expired(ttl: timedelta, contact: str) -> str:
    """The page for a genuine link past `unsubscribe.token_ttl`: nothing changed, and the
    ways that still work (a newer email's link, a reply, a note to the sender)."""
    days, hours = ttl // timedelta(days=1), ttl // timedelta(hours=1)
    period = f"{days} days" if days > 1 else f"{hours} hours" if hours > 1 else "an hour"
    address = html.escape(contact)
    return (
        "<h1>This link has expired</h1>"
        f"<p>Unsubscribe links work for {period} after their email was sent, and this one is "
        "older. Nothing was changed.</p>"
        "<p>To unsubscribe, use the link in a more recent email from us, reply to one of our "
        f'emails, or write to <a href="mailto:{address}">{address}</a> and say so.</p>'
    )


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    text = PAGE.format(title=html.escape(title), body=body)
    return HTMLResponse(text, status_code=status, headers=PAGE_HEADERS)


Endpoint = Callable[[Request], Awaitable[Response]]


def _guarded(endpoint: Endpoint) -> Endpoint:
    """A failing handler answers 500 itself and is logged. Left to Starlette, the error is
    re-raised to uvicorn, which then drops the connection: a client reusing it (SendGrid
    does) would see its next request reset rather than answered."""

    @wraps(endpoint)
    async def guarded(request: Request) -> Response:
        try:
            return await endpoint(request)
        except Exception:
            log.exception("%s %s failed", request.method, request.url.path)
            return PlainTextResponse("internal error", status_code=500)

    return guarded


def _what(claim: UnsubscribeClaim) -> str:
    if not claim.categories:
        return "all emails from us except receipts and answers to your own requests"
    return "emails about " + ", ".join(html.escape(c) for c in claim.categories)


#: what the webhook answers, and the daemon logs at start, when it has no key and unsigned
#: posts are not allowed: every post is refused until one of the two keys is set
UNCONFIGURED = (
    "the SendGrid webhook has no verification key and refuses unsigned posts: set "
    "http.sendgrid_webhook_public_key_env to the environment variable holding SendGrid's "
    "verification key, or http.sendgrid_webhook_allow_unsigned: true to accept unsigned posts"
)


def _webhook_key(public_key: str | None, allow_unsigned: bool) -> EllipticCurvePublicKey | None:
    """The key posts are checked with; says at start, once, what the webhook will do."""
    key = webhook.load_public_key(public_key) if public_key else None
    if key is not None and allow_unsigned:
        log.warning(
            "http.sendgrid_webhook_allow_unsigned is true but a verification key is set: "
            "the key wins, unsigned posts are refused"
        )
    elif key is None and allow_unsigned:
        log.warning(
            "the SendGrid webhook accepts unsigned posts (http.sendgrid_webhook_allow_unsigned:"
            " true): anyone who can reach it can bounce or unsubscribe any customer"
        )
    elif key is None:
        log.warning("%s; until then every post gets a 403", UNCONFIGURED)
    return key


def create_app(
    app: App,
    *,
    public_key: str | None,
    scheduler_alive: Callable[[], bool],
    allow_unsigned: bool = False,
) -> Starlette:
    """The ASGI app over `app`'s store. `public_key` is SendGrid's verification key (base64
    DER, as SendGrid shows it, or PEM); with it, only posts signed within the last day are
    accepted, and a bad key raises `webhook.BadPublicKey` here, at start. Without it, posts
    are accepted unsigned only when `allow_unsigned`; otherwise every one is refused (403).
    `scheduler_alive` feeds /healthz."""
    key = _webhook_key(public_key, allow_unsigned)
    secret = app.unsubscribe_secret()
    applying = threading.Lock()

    ttl = app.settings.unsubscribe.token_ttl
    sender = app.settings.sender
    expired_page = _expired(ttl, sender.reply_to or sender.email)

    def claim_of(token: str) -> UnsubscribeClaim | ExpiredToken | None:
        """The claim of a valid link; the ExpiredToken of a genuine one past its time to
        live (it gets its own page); None for anything else."""
        try:
            return check_token(secret, token, utcnow(), ttl)
        except ExpiredToken as exc:
            log.warning(
                "expired unsubscribe link used by customer %s (%s): nothing changed",
                exc.claim.customer_id,
                exc,
            )
            return exc
        except (InvalidToken, ValueError):  # ValueError: a non-ASCII payload fails to encode
            return None

    def apply_now() -> None:
        """Apply stored events at once (an unsubscribe must hold before the next send). If
        that fails, they stay unprocessed and the daemon's next tick applies them."""
        from cadence.flows.lifecycle import process_events

        with applying:
            try:
                process_events(app.store, app.rules(), utcnow())
            except Exception:
                log.exception("events are stored; applying them now failed (the next tick will)")

    async def unsubscribe_page(request: Request) -> Response:
        """GET only shows a button: mail scanners follow links, and must not unsubscribe."""
        claim = claim_of(request.path_params["token"])
        if isinstance(claim, ExpiredToken):
            return _page("Link expired", expired_page, 410)
        if claim is None:
            return _page("Link not valid", NOT_VALID, 403)
        body = (
            f"<h1>Unsubscribe</h1><p>Stop receiving {_what(claim)}?</p>"
            '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
            '<button type="submit">Unsubscribe</button></form>'
        )
        return _page("Unsubscribe", body)

    def unsubscribe_now(claim: UnsubscribeClaim, token: str) -> str:
        outcome = ledger.record_unsubscribe(app.store, claim, token, utcnow())
        if outcome == "recorded":
            apply_now()
        return outcome

    async def unsubscribe(request: Request) -> Response:
        """RFC 8058 one-click: the POST itself unsubscribes; 200, never a redirect."""
        token = request.path_params["token"]
        claim = claim_of(token)
        if isinstance(claim, ExpiredToken):
            metrics.record_unsubscribe("expired")
            return _page("Link expired", expired_page, 410)
        if claim is None:
            metrics.record_unsubscribe("rejected")
            return PlainTextResponse(
                "This unsubscribe link is not valid. Nothing was changed.",
                status_code=403,
                headers=PAGE_HEADERS,
            )
        outcome = await run_in_threadpool(unsubscribe_now, claim, token)
        metrics.record_unsubscribe(outcome)
        return _page("Unsubscribed", DONE)

    async def read_body(request: Request) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_WEBHOOK_BODY:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def store_and_apply(batch: webhook.Batch) -> ledger.Stored:
        result = ledger.store_batch(app.store, batch, utcnow())
        if result.stored or result.settled:
            apply_now()
        return result

    async def sendgrid_events(request: Request) -> Response:
        body = await read_body(request)
        if body is None:
            metrics.record_webhook_rejected("too_large")
            return JSONResponse({"error": "body too large"}, status_code=413)
        if key is None and not allow_unsigned:
            metrics.record_webhook_rejected("unconfigured")
            log.warning("SendGrid webhook post refused: %s", UNCONFIGURED)
            return JSONResponse({"error": UNCONFIGURED}, status_code=403)
        if key is not None:
            timestamp = request.headers.get(webhook.TIMESTAMP_HEADER)
            signature = request.headers.get(webhook.SIGNATURE_HEADER)
            if not webhook.verify_signature(key, timestamp, body, signature):
                metrics.record_webhook_rejected("signature")
                log.warning("SendGrid webhook post refused: missing or bad signature")
                return JSONResponse({"error": "missing or bad signature"}, status_code=403)
            stale = webhook.stale_signature(timestamp, utcnow())
            if stale is not None:
                metrics.record_webhook_rejected("stale")
                log.warning("SendGrid webhook post refused: %s", stale)
                return JSONResponse({"error": stale}, status_code=403)
        try:
            batch = webhook.parse_batch(body)
        except webhook.MalformedBatch as exc:
            metrics.record_webhook_rejected("malformed")
            log.warning("SendGrid webhook post refused: %s", exc)
            return JSONResponse({"error": str(exc)}, status_code=400)
        result = await run_in_threadpool(store_and_apply, batch)
        metrics.record_webhook(
            stored=result.stored, duplicates=result.duplicates, ignored=result.ignored
        )
        return JSONResponse(result.as_dict())

    def database_ok() -> bool:
        try:
            app.store.reads.get_meta("health")
        except Exception:  # any failure means not healthy (logged)
            log.exception("health check: the database does not answer")
            return False
        return True

    async def healthz(request: Request) -> Response:
        db = False
        with anyio.move_on_after(HEALTH_TIMEOUT):
            db = await run_in_threadpool(database_ok)
        try:
            ticking = bool(scheduler_alive())
        except Exception:  # a broken probe is a failed probe
            log.exception("health check: scheduler probe failed")
            ticking = False
        return JSONResponse(
            {"database": "ok" if db else "down", "scheduler": "ok" if ticking else "stalled"},
            status_code=200 if db and ticking else 503,
            headers={"Cache-Control": "no-store"},
        )

    async def metrics_page(request: Request) -> Response:
        return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)

    return Starlette(
        routes=[
            Route("/u/{token}", _guarded(unsubscribe_page), methods=["GET"]),
            Route("/u/{token}", _guarded(unsubscribe), methods=["POST"]),
            Route("/webhooks/sendgrid", _guarded(sendgrid_events), methods=["POST"]),
            Route("/healthz", _guarded(healthz), methods=["GET"]),
            Route("/metrics", _guarded(metrics_page), methods=["GET"]),
        ]
    )
