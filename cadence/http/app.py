"""The daemon's HTTP interface (Starlette): one-click unsubscribe, SendGrid's event webhook,
health and metrics. Handlers do their database work in a thread pool; an error in one becomes
a 500 for that request and never reaches the daemon's sending loop."""

from __future__ import annotations

import hashlib
import html
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from cadence import metrics
from cadence.clock import utcnow
from cadence.delivery.unsubscribe import InvalidToken, verify_token
from cadence.http import webhook
from cadence.model import Event

if TYPE_CHECKING:
    from cadence.app import App

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;
color:#222}}button{{font-size:1rem;padding:.6rem 1.2rem;border-radius:6px;border:0;
background:#2b59c3;color:#fff;cursor:pointer}}</style></head><body>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(PAGE.format(title=html.escape(title), body=body), status_code=status)


def create_app(app: App, *, scheduler_alive: Callable[[], bool] = lambda: True) -> Starlette:
    key_env = app.settings.http.sendgrid_webhook_public_key_env
    public_key = os.environ.get(key_env) if key_env else None
    secret = app.unsubscribe_secret()

    def claim(token: str):  # type: ignore[no-untyped-def]
        try:
            return verify_token(secret, token)
        except InvalidToken:
            return None

    async def unsubscribe_page(request: Request) -> Response:
        token = request.path_params["token"]
        if claim(token) is None:
            return _page("Link not valid", "<p>This unsubscribe link is not valid.</p>", 403)
        what = ", ".join(claim(token).categories or []) or "all our non-essential mail"
        return _page(
            "Unsubscribe",
            (
                f"<h1>Unsubscribe</h1><p>Stop receiving {html.escape(what)}?</p>"
                f'<form method="post"><button type="submit">Unsubscribe</button></form>'
            ),
        )

    def record_unsubscribe(token: str, customer_id: str, categories: list[str] | None) -> None:
        from cadence.lifecycle import process_events

        event_id = "u:" + hashlib.sha256(token.encode()).hexdigest()[:16]
        store = app.store
        if store.event_digests([event_id]) or store.customer(customer_id) is None:
            return  # a second click, or a customer no longer known: nothing to change
        data = {"categories": categories} if categories else {}
        store.add_events([(Event(event_id, customer_id, "unsubscribed", utcnow(), data), event_id)])
        process_events(store, app.rules(), utcnow())

    async def unsubscribe(request: Request) -> Response:
        token = request.path_params["token"]
        c = claim(token)
        if c is None:
            return PlainTextResponse("This unsubscribe link is not valid.", status_code=403)
        await run_in_threadpool(record_unsubscribe, token, c.customer_id, list(c.categories or []))
        return _page(
            "Unsubscribed",
            "<h1>You are unsubscribed</h1><p>You will not hear from us "
            "about this again. Receipts and replies to your own requests still reach you.</p>",
        )

    def store_batch(mapped: list[webhook.Mapped]) -> int:
        from cadence.lifecycle import process_events

        store = app.store
        known = set(store.customers_by_id(sorted({m.event.customer_id for m in mapped})))
        fresh = [m for m in mapped if m.event.customer_id in known]
        seen = store.event_digests([m.event.id for m in fresh])
        new = [m for m in fresh if m.event.id not in seen]
        store.add_events([(m.event, m.digest) for m in new])  # one transaction: all or nothing
        for m in new:
            if m.settles:
                store.settle_email(m.settles, sent=True, by=f"SendGrid event {m.event.id}")
        process_events(store, app.rules(), utcnow())
        return len(new)

    async def sendgrid_events(request: Request) -> Response:
        body = await request.body()
        if public_key is not None and not webhook.verify(
            public_key,
            request.headers.get(webhook.TIMESTAMP_HEADER),
            body,
            request.headers.get(webhook.SIGNATURE_HEADER),
        ):
            return JSONResponse({"error": "bad or missing signature"}, status_code=403)
        try:
            mapped, ignored = webhook.parse(body)
        except webhook.MalformedBatch as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        stored = await run_in_threadpool(store_batch, mapped)
        return JSONResponse(
            {"stored": stored, "duplicates": len(mapped) - stored, "ignored": ignored}
        )

    def database_ok() -> bool:
        try:
            app.store.get_meta("health")
            return True
        except Exception:  # noqa: BLE001 - any failure means not healthy
            return False

    async def healthz(request: Request) -> Response:
        db = await run_in_threadpool(database_ok)
        ticking = scheduler_alive()
        status = 200 if db and ticking else 503
        return JSONResponse(
            {"database": "ok" if db else "down", "scheduler": "ok" if ticking else "stalled"},
            status_code=status,
        )

    async def metrics_page(request: Request) -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    return Starlette(
        routes=[
            Route("/u/{token}", unsubscribe_page, methods=["GET"]),
            Route("/u/{token}", unsubscribe, methods=["POST"]),
            Route("/webhooks/sendgrid", sendgrid_events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_page, methods=["GET"]),
        ]
    )
