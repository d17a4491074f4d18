"""The `sendgrid` transport: SendGrid's v3 Mail Send API (`POST {api_host}/v3/mail/send`).

The request body is built by `sendgrid_payload` (pure, with SendGrid's helper classes); this
module sends it. The standard library's `http.client` does the HTTP, one kept-alive
connection per sending thread, each call with the configured timeout (the sendgrid library's
own client opens a connection per request and has no timeout; why not another client:
docs/performance.md).

Failures, sorted as the dispatcher needs them (an email is never sent twice):
- 4xx other than 429 (400 bad request, 401/403 the key, 413 too large): the email fails at once
  with SendGrid's own error text (`permanent`), as it does when the helpers refuse to build it;
- 429 and 5xx: SendGrid did not take it, try again later (429: the wait until
  `X-RateLimit-Reset`, which the dispatcher honours within its backoff cap);
- no answer after the request went out (a timeout, a dropped connection): SendGrid may have
  queued it (`maybe_sent`; the email becomes `unconfirmed`).
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cadence.delivery.compose import OutgoingEmail
from cadence.delivery.transports.base import SendResult, TransportError
from cadence.delivery.transports.sendgrid_payload import (
    ARG_CATEGORIES,
    ARG_CUSTOMER,
    ARG_EMAIL,
    ARG_MESSAGES,
    MAX_PERSONALIZATIONS,
    UNSUBSCRIBE_TAG,
    PayloadError,
    batch_key,
    sendgrid_batch_payload,
    sendgrid_payload,
)
from cadence.words import plural

__all__ = [
    "ARG_CATEGORIES",
    "ARG_CUSTOMER",
    "ARG_EMAIL",
    "ARG_MESSAGES",
    "UNSUBSCRIBE_TAG",
    "SendgridTransport",
    "batch_key",
    "sendgrid_batch_payload",
    "sendgrid_payload",
]

SEND_PATH = "/v3/mail/send"
#: the longest wait a reset time is reported as (a year): beyond any cap the dispatcher uses,
#: small enough for any `timedelta`
MAX_WAIT = timedelta(days=365)


class SendgridTransport:
    max_batch = MAX_PERSONALIZATIONS

    def __init__(
        self,
        api_key: str,
        api_host: str = "https://api.sendgrid.com",
        *,
        sandbox: bool = False,
        timeout: float = 30.0,
        concurrency: int = 16,
    ) -> None:
        # requests side by side, each sending thread with a connection of its own
        self.concurrency = concurrency
        parts = urlsplit(api_host.rstrip("/") + SEND_PATH)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"api_host must be an http(s) URL, not {api_host!r}")
        self.url = urlunsplit(parts)
        self.path = parts.path
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname, parts.port
        self.sandbox = sandbox
        self.timeout = timeout
        self.headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "User-Agent": "cadence",
        }
        self._local = threading.local()
        self._opened: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _connection(self) -> http.client.HTTPConnection:
        """This thread's connection, opened (or opened again, if the server closed it while
        it sat idle) before anything is written: a failure here means nothing was sent."""
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and conn.sock is not None and _dropped(conn.sock):
            conn.close()
        if conn is None:
            if self.https:
                conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        if conn.sock is None:
            try:
                conn.connect()
            except (OSError, ssl.SSLError) as exc:
                # refused, no such host, TLS failed, no answer to the handshake
                conn.close()
                raise TransportError(f"cannot reach {self.url}: {exc}") from exc
        return conn

    def send(self, out: OutgoingEmail) -> SendResult:
        try:
            payload = sendgrid_payload(out, sandbox=self.sandbox)
        except PayloadError as exc:
            raise TransportError(f"not sent to SendGrid: {exc}", permanent=True) from exc
        return self._post(payload, "the email")

    batch_key = staticmethod(batch_key)

    def send_many(self, outs: Sequence[OutgoingEmail]) -> SendResult:
        """Emails of one `batch_key` (distinct recipients) in one request: SendGrid takes or
        refuses them together, so they share one outcome."""
        if len(outs) == 1:
            return self.send(outs[0])
        try:
            payload = sendgrid_batch_payload(outs, sandbox=self.sandbox)
        except PayloadError as exc:
            raise TransportError(f"not sent to SendGrid: {exc}", permanent=True) from exc
        return self._post(payload, plural(len(outs), "email"))

    def _post(self, payload: dict[str, Any], what: str) -> SendResult:
        body = json.dumps(payload).encode("utf-8")
        conn = self._connection()
        try:
            conn.request("POST", self.path, body, self.headers)
            response = conn.getresponse()
            data = response.read()
        except TimeoutError as exc:
            conn.close()
            raise TransportError(
                f"no answer from {self.url} (within {self.timeout:g}s): {exc}", maybe_sent=True
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            # the request may have gone out: only SendGrid's events can tell
            conn.close()
            raise TransportError(
                f"connection to {self.url} lost: {type(exc).__name__}: {exc}", maybe_sent=True
            ) from exc
        if response.will_close:
            conn.close()
        code = response.status
        if code in (200, 202):  # 202: queued; 200: valid but not sent (sandbox mode)
            return SendResult(response.getheader("X-Message-Id"))
        permanent = 400 <= code < 500 and code != 429
        raise TransportError(
            f"SendGrid refused {what}: HTTP {code} {_error_detail(data, response.reason)}",
            permanent=permanent,
            retry_after=_wait_for(response.getheader("X-RateLimit-Reset")) if code == 429 else None,
        )

    def close(self) -> None:
        with self._lock:
            for conn in self._opened:
                conn.close()
            self._opened.clear()


def _dropped(sock: socket.socket) -> bool:
    """An idle kept-alive socket that is readable has been closed by the server (or holds
    bytes nobody asked for): either way it must not carry the next request."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _error_detail(data: bytes, reason: str) -> str:
    """SendGrid explains a refusal as `{"errors": [{"message", "field"}]}`."""
    try:
        errors = json.loads(data).get("errors", [])
        return (
            "; ".join(
                f"{e.get('field')}: {e.get('message')}" if e.get("field") else str(e.get("message"))
                for e in errors
            )
            or reason
        )
    except (ValueError, AttributeError):
        return reason


def _wait_for(reset: str | None) -> timedelta | None:
    """`X-RateLimit-Reset` is the Unix time when the rate limit resets: how long from now
    (this host's clock) that is, never negative; None when it is not a number. Any size is
    fine: the dispatcher caps the wait."""
    try:
        seconds = float(reset or "") - time.time()
    except ValueError:
        return None
    if seconds != seconds:  # NaN
        return None
    return timedelta(seconds=min(max(seconds, 0.0), MAX_WAIT.total_seconds()))
