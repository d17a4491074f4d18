"""Transports: how a composed email leaves. The interface and what a transport declares in
`base`; `file`, `console`, `recording` (simulate, preview), `smtp` and `sendgrid` a module
each. `make_transport(settings)` picks the configured one."""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

from cadence.clock import utcnow
from cadence.delivery.transports.base import (
    BatchingTransport,
    Clock,
    SendResult,
    Transport,
    TransportError,
)
from cadence.delivery.transports.console import ConsoleTransport
from cadence.delivery.transports.file import FileTransport, eml_name
from cadence.delivery.transports.recording import RecordingTransport

if TYPE_CHECKING:
    from cadence.config import Settings

__all__ = [
    "BatchingTransport",
    "ConsoleTransport",
    "FileTransport",
    "RecordingTransport",
    "SendResult",
    "Transport",
    "TransportError",
    "eml_name",
    "make_transport",
]


def make_transport(
    settings: Settings, *, clock: Clock = utcnow, stream: TextIO | None = None
) -> Transport:
    """The transport `settings.transport.kind` names, with its secrets read now: a missing
    API key or password is an error at start, not at the first email."""
    kind = settings.transport.kind
    if kind == "file":
        return FileTransport(settings.transport.file.dir, clock)
    if kind == "console":
        return ConsoleTransport(stream)
    if kind == "smtp":
        from cadence.delivery.transports.smtp import SmtpTransport

        smtp = settings.transport.smtp
        password = settings.secret("transport.smtp.password_env") if smtp.password_env else None
        return SmtpTransport(
            host=smtp.host,
            port=smtp.port,
            username=smtp.username,
            password=password,
            starttls=smtp.starttls,
            timeout=smtp.timeout.total_seconds(),
            clock=clock,
        )
    if kind == "sendgrid":
        from cadence.delivery.transports.sendgrid import SendgridTransport

        sendgrid = settings.transport.sendgrid
        return SendgridTransport(
            api_key=settings.secret("transport.sendgrid.api_key_env"),
            api_host=sendgrid.api_host,
            sandbox=sendgrid.sandbox,
            timeout=sendgrid.timeout.total_seconds(),
            concurrency=sendgrid.concurrency,
        )
    raise ValueError(f"unknown transport kind {kind!r}")
