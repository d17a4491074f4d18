"""What every HTTP handler of the daemon shares: the page frame and its headers, the 500 that
a failing handler answers itself, reading a body within a limit, and `Served`, the setup the
handlers act on (the app, the signing secret, how long links live, applying events at once).
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import wraps
from typing import TYPE_CHECKING, TypeVar

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from cadence.clock import utcnow
from cadence.delivery.unsubscribe import (
    ExpiredToken,
    InvalidToken,
    PreferencesClaim,
    UnsubscribeClaim,
    check_preferences_token,
    check_token,
)

if TYPE_CHECKING:
    from cadence.app import App

#: the claim a link carries: an unsubscribe or a preference claim
C = TypeVar("C", UnsubscribeClaim, PreferencesClaim)

log = logging.getLogger("cadence.http")

#: a SendGrid batch (or an inbound email with its attachments) is far below this; anything
#: larger is not one, and must not fill memory
MAX_WEBHOOK_BODY = 16 * 1024 * 1024

#: the pages carry a capability in their URL: never cached, indexed, framed, or passed on as a
#: Referer; they run no script at all
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
}

# Every control shows where the keyboard is (:focus-visible, a thick outline that is not the
# only cue of anything else), and text keeps a contrast of at least 4.5:1 on white.
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;
color:#222;line-height:1.5}}button{{font-size:1rem;padding:.6rem 1.2rem;border-radius:6px;
border:0;background:#2b59c3;color:#fff;cursor:pointer}}a{{color:#1d4aa8}}
fieldset{{border:1px solid #bbb;border-radius:6px;margin:0 0 1.2rem;padding:.6rem 1rem}}
legend{{font-weight:600;padding:0 .3rem}}.choice{{margin:.4rem 0}}
input[type=number]{{width:4rem;font-size:1rem;margin-left:.4rem}}.note{{color:#555;
font-size:.9rem;margin:.2rem 0 0 1.6rem}}.error{{color:#a40000;font-weight:600}}
:focus-visible{{outline:3px solid #e07b00;outline-offset:2px}}</style></head>
<body>{body}</body></html>"""

NOT_VALID = "<h1>This link is not valid</h1><p>Nothing was changed.</p>"


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    text = PAGE.format(title=html.escape(title), body=body)
    return HTMLResponse(text, status_code=status, headers=PAGE_HEADERS)


def expired(ttl: timedelta, contact: str, links: str, instead: str) -> str:
    """The page for a genuine link past `unsubscribe.token_ttl`: nothing changed, and the
    ways that still work (a newer email's link, a reply, a note to the sender). `links` names
    the kind of link ("Unsubscribe links"); `instead` what to do ("To unsubscribe")."""
    days, hours = ttl // timedelta(days=1), ttl // timedelta(hours=1)
    period = f"{days} days" if days > 1 else f"{hours} hours" if hours > 1 else "an hour"
    address = html.escape(contact)
    return (
        "<h1>This link has expired</h1>"
        f"<p>{links} work for {period} after their email was sent, and this one is "
        "older. Nothing was changed.</p>"
        f"<p>{instead}, use the link in a more recent email from us, reply to one of our "
        f'emails, or write to <a href="mailto:{address}">{address}</a> and say so.</p>'
    )


Endpoint = Callable[[Request], Awaitable[Response]]


def guarded(endpoint: Endpoint) -> Endpoint:
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


async def read_body(request: Request, limit: int = MAX_WEBHOOK_BODY) -> bytes | None:
    """The body, or None once it is longer than `limit` (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass
class Served:
    """The setup every handler acts on, made once when the HTTP app is."""

    app: App
    secret: bytes
    ttl: timedelta  # how long a link works (`unsubscribe.token_ttl`)
    contact: str  # where a person can write instead (reply-to, else the sender)
    _applying: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def unsubscribe_claim(self, token: str) -> UnsubscribeClaim | ExpiredToken | None:
        """The claim of a valid unsubscribe link; the ExpiredToken of a genuine one past its
        time to live (it gets its own page); None for anything else."""
        return self._claim(check_token, token, "unsubscribe")

    def preferences_claim(self, token: str) -> PreferencesClaim | ExpiredToken | None:
        """As `unsubscribe_claim`, for a preference link."""
        return self._claim(check_preferences_token, token, "preference")

    def _claim(
        self, check: Callable[[bytes, str, datetime, timedelta], C], token: str, kind: str
    ) -> C | ExpiredToken | None:
        try:
            return check(self.secret, token, utcnow(), self.ttl)
        except ExpiredToken as exc:
            log.warning(
                "expired %s link used by customer %s (%s): nothing changed",
                kind,
                exc.claim.customer_id,
                exc,
            )
            return exc
        except (InvalidToken, ValueError):  # ValueError: a non-ASCII payload fails to encode
            return None

    def apply_now(self) -> None:
        """Apply stored events at once (an unsubscribe must hold before the next send). If
        that fails, they stay unprocessed and the daemon's next tick applies them."""
        from cadence.flows.lifecycle import process_events

        with self._applying:
            try:
                process_events(self.app.store, self.app.rules(), utcnow())
            except Exception:
                log.exception("events are stored; applying them now failed (the next tick will)")
