"""The `sendgrid` transport: SendGrid's v3 Mail Send API (`POST {api_host}/v3/mail/send`).

`sendgrid_payload` is pure, so what goes to SendGrid can be checked without a network. The
cadence ids travel in `custom_args`, which SendGrid copies into every event of its event
webhook: that is how a bounce or an unsubscribe finds its way back to the customer and email.
httpx does the HTTP: one client per transport keeps connections open between emails (the
sendgrid library's own client opens one per request and has no timeout), and every call has
the configured timeout.

Failures, sorted as the dispatcher needs them (an email is never sent twice):
- 4xx other than 429 (400 bad request, 401/403 the key, 413 too large): the email fails at once
  with SendGrid's own error text (`permanent`);
- 429 and 5xx: SendGrid did not take it, try again later (429: at `X-RateLimit-Reset`);
- no answer after the request went out (a timeout, a dropped connection): SendGrid may have
  queued it (`maybe_sent`; the email becomes `unconfirmed`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx

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
    concurrency = 8  # one httpx client is safe to share between the dispatcher's threads

    def __init__(
        self,
        api_key: str,
        api_host: str = "https://api.sendgrid.com",
        *,
        sandbox: bool = False,
        timeout: float = 30.0,
    ) -> None:
        self.url = api_host.rstrip("/") + SEND_PATH
        self.sandbox = sandbox
        self.timeout = timeout
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            headers={
                "Authorization": f"Bearer {api_key}",
                "Content-Type": "application/json",
                "User-Agent": "cadence",
            },
            limits=httpx.Limits(max_keepalive_connections=8, max_connections=8),
        )

    def send(self, out: OutgoingEmail) -> SendResult:
        body = json.dumps(sendgrid_payload(out, sandbox=self.sandbox)).encode("utf-8")
        try:
            response = self.client.post(self.url, content=body)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # refused, no such host, TLS failed, no free connection: nothing was sent
            raise TransportError(f"cannot reach {self.url}: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise TransportError(
                f"no answer from {self.url} (within {self.timeout:g}s): {exc}", maybe_sent=True
            ) from exc
        except httpx.HTTPError as exc:
            # the request may have gone out: only SendGrid's events can tell
            raise TransportError(f"connection to {self.url} lost: {exc}", maybe_sent=True) from exc
        code = response.status_code
        if code in (200, 202):  # 202: queued; 200: valid but not sent (sandbox mode)
            return SendResult(response.headers.get("X-Message-Id"))
        permanent = 400 <= code < 500 and code != 429
        raise TransportError(
            f"SendGrid refused the email: HTTP {code} {_error_detail(response)}",
            permanent=permanent,
            retry_at=_reset_time(response.headers.get("X-RateLimit-Reset"))
            if code == 429
            else None,
        )

    def close(self) -> None:
        self.client.close()


def _error_detail(response: httpx.Response) -> str:
    """SendGrid explains a refusal as `{"errors": [{"message", "field"}]}`."""
    try:
        errors = response.json().get("errors", [])
        return (
            "; ".join(
                f"{e.get('field')}: {e.get('message')}" if e.get("field") else str(e.get("message"))
                for e in errors
            )
            or response.reason_phrase
        )
    except (ValueError, AttributeError):
        return response.reason_phrase


def _reset_time(value: str | None) -> datetime | None:
    """`X-RateLimit-Reset` is the Unix time when the rate limit resets."""
    try:
        return datetime.fromtimestamp(int(value or ""), UTC)
    except ValueError:
        return None
