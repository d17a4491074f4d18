"""The `sendgrid` transport: SendGrid's v3 Mail Send API (`POST {api_host}/v3/mail/send`).

`sendgrid_payload` is pure, so what goes to SendGrid can be checked without a network. The
cadence ids travel in `custom_args`, which SendGrid copies into every event of its event
webhook: that is how a bounce or an unsubscribe finds its way back to the customer and email.
The standard library's `http.client` does the HTTP, one kept-alive connection per sending
thread, each call with the configured timeout (the sendgrid library's own client opens a
connection per request and has no timeout; why not another client: docs/performance.md).

Failures, sorted as the dispatcher needs them (an email is never sent twice):
- 4xx other than 429 (400 bad request, 401/403 the key, 413 too large): the email fails at once
  with SendGrid's own error text (`permanent`);
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

from cadence.delivery.compose import H_UNSUBSCRIBE, OutgoingEmail
from cadence.delivery.mime import message_id
from cadence.delivery.transports.base import SendResult, TransportError
from cadence.words import plural

SEND_PATH = "/v3/mail/send"
MAX_CATEGORIES = 10  # SendGrid's limit per email
#: the longest wait a reset time is reported as (a year): beyond any cap the dispatcher uses,
#: small enough for any `timedelta`
MAX_WAIT = timedelta(days=365)

#: keys of `custom_args`; the SendGrid webhook reads them back
ARG_EMAIL = "cadence_email"
ARG_CUSTOMER = "cadence_customer"
ARG_MESSAGES = "cadence_messages"
ARG_CATEGORIES = "cadence_categories"  # what an `unsubscribe` event from SendGrid covers


def _address(email: str, name: str | None) -> dict[str, str]:
    return {"email": email, "name": name} if name else {"email": email}


#: SendGrid's limit of personalizations (emails) in one request
MAX_PERSONALIZATIONS = 1000
#: in a request for several emails, each one's unsubscribe URL, substituted by SendGrid into
#: that recipient's copy (`personalizations[].substitutions`)
UNSUBSCRIBE_TAG = "-cadence-unsubscribe-url-"


def _unsubscribe_url(out: OutgoingEmail) -> str | None:
    value = out.header(H_UNSUBSCRIBE)
    return value.strip("<>") if value else None


def _content(text: str, html: str | None) -> list[dict[str, str]]:
    content = [{"type": "text/plain", "value": text}]
    if html is not None:
        content.append({"type": "text/html", "value": html})
    return content


def _headers(out: OutgoingEmail) -> dict[str, str]:
    """The email's headers, with the Message-ID the file and SMTP transports give it
    (`mime.message_id`): SendGrid keeps a Message-ID it is given (it is not among the
    headers v3 reserves), so a reply's In-Reply-To names the email by its id, which is how
    the inbound webhook knows which email, and so which role, a reply answers. Without it,
    SendGrid makes up its own and a reply is known by its sender's address alone."""
    return {**dict(out.headers), "Message-ID": message_id(out)}


def _custom_args(out: OutgoingEmail) -> dict[str, str]:
    return {  # values must be strings
        ARG_EMAIL: out.email_id,
        ARG_CUSTOMER: out.customer_id,
        ARG_MESSAGES: ",".join(out.message_ids),
        ARG_CATEGORIES: ",".join(out.categories),
    }


def _tagged(out: OutgoingEmail) -> tuple[str, str | None]:
    """The text and HTML with the email's own unsubscribe URL replaced by the tag."""
    url = _unsubscribe_url(out)
    if not url:
        return out.text, out.html
    html = out.html.replace(url, UNSUBSCRIBE_TAG) if out.html is not None else None
    return out.text.replace(url, UNSUBSCRIBE_TAG), html


def batch_key(out: OutgoingEmail) -> str | None:
    """Emails with equal keys can go in one request, one personalization each: they share
    everything SendGrid keeps at the top of a request (sender, reply-to, categories, the
    content once each one's unsubscribe URL is taken out as a tag). None: this one goes
    alone (its content already holds the tag, so substituting could change it)."""
    if UNSUBSCRIBE_TAG in out.text or (out.html is not None and UNSUBSCRIBE_TAG in out.html):
        return None
    text, html = _tagged(out)
    return json.dumps(
        [out.from_email, out.from_name, out.reply_to, list(out.categories), text, html]
    )


def _request(
    first: OutgoingEmail,
    personalizations: list[dict[str, Any]],
    content: list[dict[str, str]],
    sandbox: bool,
    **top: Any,
) -> dict[str, Any]:
    """A request body: what all its emails share, taken from the first."""
    payload: dict[str, Any] = {
        "personalizations": personalizations,
        "from": _address(first.from_email, first.from_name),
        "subject": first.subject,
        "content": content,
        **top,
        "mail_settings": {"sandbox_mode": {"enable": sandbox}},
    }
    if first.reply_to:
        payload["reply_to"] = {"email": first.reply_to}
    if first.categories:
        payload["categories"] = list(first.categories[:MAX_CATEGORIES])
    return payload


def sendgrid_batch_payload(
    outs: Sequence[OutgoingEmail], *, sandbox: bool = False
) -> dict[str, Any]:
    """One request for emails of one `batch_key` (distinct recipients, at most
    MAX_PERSONALIZATIONS): each is a personalization with its own recipient, subject (the
    top-level one is the first's: SendGrid wants one there), headers, cadence ids and
    unsubscribe URL; SendGrid sends each as an email of its own."""
    personalizations = []
    for out in outs:
        one: dict[str, Any] = {
            "to": [_address(out.to_email, out.to_name)],
            "subject": out.subject,
            "headers": _headers(out),
            "custom_args": _custom_args(out),
        }
        own = _unsubscribe_url(out)
        if own:
            one["substitutions"] = {UNSUBSCRIBE_TAG: own}
        personalizations.append(one)
    return _request(outs[0], personalizations, _content(*_tagged(outs[0])), sandbox)


def sendgrid_payload(out: OutgoingEmail, *, sandbox: bool = False) -> dict[str, Any]:
    """The v3 Mail Send request body for one email (text first, then HTML, as SendGrid wants)."""
    return _request(
        out,
        [{"to": [_address(out.to_email, out.to_name)]}],
        _content(out.text, out.html),
        sandbox,
        headers=_headers(out),
        custom_args=_custom_args(out),
    )


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
        return self._post(sendgrid_payload(out, sandbox=self.sandbox), "the email")

    batch_key = staticmethod(batch_key)

    def send_many(self, outs: Sequence[OutgoingEmail]) -> SendResult:
        """Emails of one `batch_key` (distinct recipients) in one request: SendGrid takes or
        refuses them together, so they share one outcome."""
        if len(outs) == 1:
            return self.send(outs[0])
        payload = sendgrid_batch_payload(outs, sandbox=self.sandbox)
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
