"""The `sendgrid` transport: SendGrid's v3 Mail Send API (`POST {api_host}/v3/mail/send`).

`sendgrid_payload` is pure, so what goes to SendGrid can be checked without a network. The
cadence ids travel in `custom_args`, which SendGrid copies into every event of its event
webhook: that is how a bounce or an unsubscribe finds its way back to the customer and email.
The plain standard library does the HTTP, so the transport adds no dependency and its timeout
is exactly the configured one.

Failures, sorted as the dispatcher needs them (an email is never sent twice):
- 4xx other than 429 (400 bad request, 401/403 the key, 413 too large): the email fails at once
  with SendGrid's own error text (`permanent`);
- 429 and 5xx: SendGrid did not take it, try again later (429: at `X-RateLimit-Reset`);
- no answer after the request went out (a timeout, a dropped connection): SendGrid may have
  queued it (`maybe_sent`; the email becomes `unconfirmed`).
"""

from __future__ import annotations

import json
import socket
import ssl
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

from cadence.delivery.compose import OutgoingEmail
from cadence.delivery.transports import SendResult, TransportError

SEND_PATH = "/v3/mail/send"
MAX_CATEGORIES = 10  # SendGrid's limit per email

#: keys of `custom_args`; the SendGrid webhook reads them back
ARG_EMAIL = "cadence_email"
ARG_CUSTOMER = "cadence_customer"
ARG_MESSAGES = "cadence_messages"
ARG_CATEGORIES = "cadence_categories"  # what an `unsubscribe` event from SendGrid covers


def _address(email: str, name: str | None) -> dict[str, str]:
    return {"email": email, "name": name} if name else {"email": email}


def sendgrid_payload(out: OutgoingEmail, *, sandbox: bool = False) -> dict[str, Any]:
    """The v3 Mail Send request body for one email (text first, then HTML, as SendGrid wants)."""
    content = [{"type": "text/plain", "value": out.text}]
    if out.html is not None:
        content.append({"type": "text/html", "value": out.html})
    payload: dict[str, Any] = {
        "personalizations": [{"to": [_address(out.to_email, out.to_name)]}],
        "from": _address(out.from_email, out.from_name),
        "subject": out.subject,
        "content": content,
        "headers": dict(out.headers),
        "custom_args": {  # values must be strings
            ARG_EMAIL: out.email_id,
            ARG_CUSTOMER: out.customer_id,
            ARG_MESSAGES: ",".join(out.message_ids),
            ARG_CATEGORIES: ",".join(out.categories),
        },
        "mail_settings": {"sandbox_mode": {"enable": sandbox}},
    }
    if out.reply_to:
        payload["reply_to"] = {"email": out.reply_to}
    if out.categories:
        payload["categories"] = list(out.categories[:MAX_CATEGORIES])
    return payload


class SendgridTransport:
    def __init__(
        self,
        api_key: str,
        api_host: str = "https://api.sendgrid.com",
        *,
        sandbox: bool = False,
        timeout: float = 30.0,
    ) -> None:
        self.api_key = api_key
        self.url = api_host.rstrip("/") + SEND_PATH
        self.sandbox = sandbox
        self.timeout = timeout

    def send(self, out: OutgoingEmail) -> SendResult:
        body = json.dumps(sendgrid_payload(out, sandbox=self.sandbox)).encode("utf-8")
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Authorization": f"Bearer {self.api_key}",
                "Content-Type": "application/json",
                "User-Agent": "cadence",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                # 202: queued; 200: valid but not sent (sandbox mode)
                return SendResult(response.headers.get("X-Message-Id"))
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc)
            code = exc.code
            permanent = 400 <= code < 500 and code != 429
            raise TransportError(
                f"SendGrid refused the email: HTTP {code} {detail}",
                permanent=permanent,
                retry_at=_reset_time(exc.headers.get("X-RateLimit-Reset")) if code == 429 else None,
            ) from exc
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, str | ConnectionRefusedError | socket.gaierror | ssl.SSLError):
                # refused, no such host, TLS failed: nothing was sent
                raise TransportError(f"cannot reach {self.url}: {reason}") from exc
            raise TransportError(
                f"no answer from {self.url} (within {self.timeout:g}s): {reason}", maybe_sent=True
            ) from exc
        except (TimeoutError, ConnectionError, OSError) as exc:
            # the request may have gone out: only SendGrid's events can tell
            raise TransportError(f"connection to {self.url} lost: {exc}", maybe_sent=True) from exc

    def close(self) -> None:
        pass


def _error_detail(exc: urllib.error.HTTPError) -> str:
    """SendGrid explains a refusal as `{"errors": [{"message", "field"}]}`."""
    try:
        body = json.loads(exc.read().decode("utf-8", errors="replace"))
        errors = body.get("errors", [])
        return "; ".join(
            f"{e.get('field')}: {e.get('message')}" if e.get("field") else str(e.get("message"))
            for e in errors
        ) or str(exc.reason)
    except (ValueError, AttributeError, OSError):
        return str(exc.reason)


def _reset_time(value: str | None) -> datetime | None:
    """`X-RateLimit-Reset` is the Unix time when the rate limit resets."""
    try:
        return datetime.fromtimestamp(int(value or ""), UTC)
    except ValueError:
        return None
