"""The daemon's HTTP interface as an ASGI app (Starlette): one-click unsubscribe, the
preference page, SendGrid's event webhook and Inbound Parse (replies), health and metrics.

Handlers only translate HTTP: the checks are pure (`cadence.delivery.unsubscribe`,
`cadence.feedback.webhook`, `cadence.feedback.inbound`) and the writes are plain functions
(`cadence.feedback.ledger`), run in Starlette's thread pool because the store is synchronous.
An error in a handler becomes a 500 for that one request; it never reaches the daemon's
scheduler, which runs in another thread. The preference page's and the inbound webhook's
handlers live in `cadence.feedback.preferences` and `cadence.feedback.replies`.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from cadence import metrics
from cadence.clock import utcnow
from cadence.delivery.unsubscribe import ExpiredToken, UnsubscribeClaim
from cadence.feedback import ledger, preferences, replies, webhook
from cadence.feedback.pages import (
    NOT_VALID,
    PAGE_HEADERS,
    Served,
    expired,
    guarded,
    page,
    read_body,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

    from cadence.app import App

log = logging.getLogger("cadence.http")

#: /healthz answers within this even when the database hangs
HEALTH_TIMEOUT = 5.0

DONE = (
    "<h1>You are unsubscribed</h1><p>You will not get these emails from us any more. "
    "Receipts and answers to your own requests still reach you.</p>"
)


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
    inbound_key: str | None = None,
) -> Starlette:
    """The ASGI app over `app`'s store. `public_key` is SendGrid's verification key (base64
    DER, as SendGrid shows it, or PEM); with it, only posts signed within the last day are
    accepted, and a bad key raises `webhook.BadPublicKey` here, at start. Without it, posts
    are accepted unsigned only when `allow_unsigned`; otherwise every one is refused (403).
    `inbound_key` is what Inbound Parse posts must carry as `?key=` (None: every one is
    refused). `scheduler_alive` feeds /healthz."""
    key = _webhook_key(public_key, allow_unsigned)
    sender = app.settings.sender
    served = Served(
        app,
        app.unsubscribe_secret(),
        app.settings.unsubscribe.token_ttl,
        sender.reply_to or sender.email,
    )
    expired_page = expired(served.ttl, served.contact, "Unsubscribe links", "To unsubscribe")

    async def unsubscribe_page(request: Request) -> Response:
        """GET only shows a button: mail scanners follow links, and must not unsubscribe."""
        token = request.path_params["token"]
        claim = served.unsubscribe_claim(token)
        if isinstance(claim, ExpiredToken):
            return page("Link expired", expired_page, 410)
        if claim is None:
            return page("Link not valid", NOT_VALID, 403)
        fewer = html.escape(preferences.page_url(served, claim))
        body = (
            f"<h1>Unsubscribe</h1><p>Stop receiving {_what(claim)}?</p>"
            '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
            '<button type="submit">Unsubscribe</button></form>'
            f'<p>Or <a id="fewer" href="{fewer}">choose fewer emails instead</a>: which ones '
            "you get, and how often.</p>"
        )
        return page("Unsubscribe", body)

    def unsubscribe_now(claim: UnsubscribeClaim, token: str) -> str:
        outcome = ledger.record_unsubscribe(app.store, claim, token, utcnow())
        if outcome == "recorded":
            served.apply_now()
        return outcome

    async def unsubscribe(request: Request) -> Response:
        """RFC 8058 one-click: the POST itself unsubscribes; 200, never a redirect."""
        token = request.path_params["token"]
        claim = served.unsubscribe_claim(token)
        if isinstance(claim, ExpiredToken):
            metrics.record_unsubscribe("expired")
            return page("Link expired", expired_page, 410)
        if claim is None:
            metrics.record_unsubscribe("rejected")
            return PlainTextResponse(
                "This unsubscribe link is not valid. Nothing was changed.",
                status_code=403,
                headers=PAGE_HEADERS,
            )
        outcome = await run_in_threadpool(unsubscribe_now, claim, token)
        metrics.record_unsubscribe(outcome)
        return page("Unsubscribed", DONE)

    def store_and_apply(batch: webhook.Batch) -> ledger.Stored:
        result = ledger.store_batch(app.store, batch, utcnow())
        if result.stored or result.settled:
            served.apply_now()
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
            Route("/u/{token}", guarded(unsubscribe_page), methods=["GET"]),
            Route("/u/{token}", guarded(unsubscribe), methods=["POST"]),
            *preferences.routes(served),
            Route("/webhooks/sendgrid", guarded(sendgrid_events), methods=["POST"]),
            replies.route(served, inbound_key),
            Route("/healthz", guarded(healthz), methods=["GET"]),
            Route("/metrics", guarded(metrics_page), methods=["GET"]),
        ]
    )
