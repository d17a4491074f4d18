"""The `smtp` transport: any SMTP server (a relay, a local MTA, a provider's SMTP endpoint).

Why failures are sorted the way they are: the dispatcher must never send an email twice.
- The connection is checked (NOOP) and, if stale, opened again *before* anything is sent:
  nothing has left yet, so reconnecting is safe.
- A reply code from the server is an answer: 5xx is permanent (a refused address stays
  refused), 4xx is temporary; either way the server did not take the email.
- A connection lost or timed out while the email was being handed over is not an answer: the
  server may have queued it, so it is `maybe_sent` (the email becomes `unconfirmed`).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from datetime import datetime

from cadence.clock import utcnow
from cadence.delivery.compose import OutgoingEmail
from cadence.delivery.mime import message_id, to_mime
from cadence.delivery.transports.base import SendResult, TransportError


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else reply


def _permanent(code: int) -> bool:
    return 500 <= code < 600


class SmtpTransport:
    """Sends over one SMTP connection, kept open between emails and reopened when stale."""

    concurrency = 1  # one connection, one email at a time

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 30.0,
        clock: Callable[[], datetime] = utcnow,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.starttls = starttls
        self.timeout = timeout
        self.clock = clock
        self.ssl_context = ssl_context
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        where = f"{self.host}:{self.port}"
        smtp: smtplib.SMTP | None = None
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            smtp.ehlo()
            if self.starttls:
                smtp.starttls(context=self.ssl_context or ssl.create_default_context())
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            self._quietly_close(smtp)
            raise TransportError(
                f"SMTP server {where} refused the login for {self.username!r}: "
                f"{exc.smtp_code} {_text(exc.smtp_error)}"
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self._quietly_close(smtp)
            raise TransportError(f"cannot connect to SMTP server {where}: {exc}") from exc
        return smtp

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None:
            try:
                if self._smtp.noop()[0] == 250:
                    return self._smtp
            except (OSError, smtplib.SMTPException):
                pass
            self._quietly_close(self._smtp)
            self._smtp = None
        self._smtp = self._connect()
        return self._smtp

    def send(self, out: OutgoingEmail) -> SendResult:
        smtp = self._connection()
        msg = to_mime(out, self.clock())
        try:
            smtp.send_message(msg, from_addr=out.from_email, to_addrs=[out.to_email])
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            detail = "; ".join(
                f"{rcpt}: {code} {_text(text)}" for rcpt, (code, text) in exc.recipients.items()
            )
            self._reset(smtp)
            raise TransportError(
                f"recipient refused: {detail}", permanent=all(_permanent(c) for c in codes)
            ) from exc
        except smtplib.SMTPResponseException as exc:
            # sender refused, data refused, ...: the server answered, it does not have it
            self._reset(smtp)
            text = _text(exc.smtp_error)
            raise TransportError(
                f"SMTP server refused the email: {exc.smtp_code} {text}",
                permanent=_permanent(exc.smtp_code),
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self._quietly_close(smtp)
            self._smtp = None
            raise TransportError(
                f"connection to {self.host}:{self.port} lost while sending: {exc}",
                maybe_sent=True,
            ) from exc
        return SendResult(message_id(out))

    def _reset(self, smtp: smtplib.SMTP) -> None:
        """After a refusal the session may be mid-transaction: start clean or start over."""
        try:
            smtp.rset()
        except (OSError, smtplib.SMTPException):
            self._quietly_close(smtp)
            self._smtp = None

    @staticmethod
    def _quietly_close(smtp: smtplib.SMTP | None) -> None:
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()

    def close(self) -> None:
        self._quietly_close(self._smtp)
        self._smtp = None
