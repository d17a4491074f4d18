"""Transports: how a composed email leaves. `file` and `console` here; `smtp` and `sendgrid` in
their own modules. `make_transport(settings)` picks the configured one.

Every transport only changes the wire format of an `OutgoingEmail`; everything the customer
sees was decided by `compose`. A transport reports what it knows about failure precisely,
because the dispatcher must never send an email twice: `TransportError.maybe_sent` says the
provider may have the email (the status becomes `unconfirmed`, never retried automatically),
`permanent` says retrying cannot help.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO

from cadence.clock import utcnow
from cadence.delivery.compose import H_UNSUBSCRIBE, OutgoingEmail
from cadence.delivery.mime import to_bytes

if TYPE_CHECKING:
    from cadence.config import Settings

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class SendResult:
    provider_id: str | None  # what the provider calls it (file path, Message-ID, X-Message-Id)


class TransportError(Exception):
    """A send that did not succeed. `permanent`: do not retry (a refused address, a rejected
    request). `maybe_sent`: the provider may have accepted it (a timeout after handing it
    over): never retry automatically, settle it from the provider's events or by hand."""

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool = False,
        maybe_sent: bool = False,
        retry_at: datetime | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.maybe_sent = maybe_sent
        self.retry_at = retry_at  # the provider said when (429 with X-RateLimit-Reset)


class Transport(Protocol):
    def send(self, out: OutgoingEmail) -> SendResult: ...

    def close(self) -> None: ...


class BatchingTransport(Transport, Protocol):
    """A transport that can hand several emails over in one request (SendGrid: one
    personalization each). `batch_key` says which emails may share a request (None: this one
    goes alone); `send_many` takes emails of one key with distinct recipients, all of which
    share the one outcome."""

    max_batch: int

    def batch_key(self, out: OutgoingEmail) -> str | None: ...

    def send_many(self, outs: Sequence[OutgoingEmail]) -> SendResult: ...


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def eml_name(email_id: str) -> str:
    """A file name for an email id: ids are ours (`e-<hex>`), but never trust a path part."""
    return _UNSAFE.sub("_", email_id).lstrip(".") + ".eml"


class FileTransport:
    """Writes each email as `<dir>/<email_id>.eml` (RFC 5322, CRLF).

    Atomic: the bytes go to a temporary file in the same folder, then are linked into place, so
    a reader never sees half a file and a crash leaves at most a stray `.tmp-` file. Idempotent:
    an email whose file exists is not written again, so a retried send is harmless.
    """

    concurrency = 4  # each email is its own file

    def __init__(self, directory: Path, clock: Clock = utcnow) -> None:
        self.directory = Path(directory)
        self.clock = clock

    def path_for(self, out: OutgoingEmail) -> Path:
        return self.directory / eml_name(out.email_id)

    def send(self, out: OutgoingEmail) -> SendResult:
        target = self.path_for(out)
        if target.exists():
            return SendResult(str(target))
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            data = to_bytes(out, self.clock())
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".eml", dir=self.directory)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                _place(Path(tmp), target)
            finally:
                Path(tmp).unlink(missing_ok=True)
        except OSError as exc:
            raise TransportError(f"cannot write {target}: {exc}") from exc
        return SendResult(str(target))

    def close(self) -> None:
        pass


def _place(tmp: Path, target: Path) -> None:
    """Move `tmp` to `target` unless `target` exists (then the first writer wins)."""
    try:
        os.link(tmp, target)  # fails if target exists: two writers cannot both win
    except FileExistsError:
        return
    except OSError:  # a filesystem without hard links
        if not target.exists():
            os.replace(tmp, target)


class ConsoleTransport:
    """Prints a readable summary and the text part: for trying rules without sending."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(self, out: OutgoingEmail) -> SendResult:
        stream = self.stream or sys.stdout
        to = f"{out.to_name} <{out.to_email}>" if out.to_name else out.to_email
        sender = f"{out.from_name} <{out.from_email}>" if out.from_name else out.from_email
        kind = "transactional" if out.transactional else ", ".join(out.categories) or "-"
        lines = [
            f"=== email {out.email_id} to {to}",
            f"From: {sender}",
        ]
        if out.reply_to:
            lines.append(f"Reply-To: {out.reply_to}")
        lines += [
            f"Subject: {out.subject}",
            f"Messages: {', '.join(out.message_ids)} ({kind})",
        ]
        unsubscribe = out.header(H_UNSUBSCRIBE)
        if unsubscribe:
            lines.append(f"{H_UNSUBSCRIBE}: {unsubscribe}")
        if out.html is not None:
            lines.append("(with an HTML part)")
        stream.write("\n".join(lines) + "\n\n" + out.text.rstrip("\n") + "\n\n")
        stream.flush()
        return SendResult(None)

    def close(self) -> None:
        pass


class RecordingTransport:
    """Takes every email and keeps what it was (its subject; with `bodies`, the whole
    email), sending nothing: the transport of `simulate` and `preview`, whose passes run on
    a scratch copy of the ledger."""

    concurrency = 1

    def __init__(self, *, bodies: bool = False) -> None:
        self.bodies = bodies
        self.subjects: dict[str, str] = {}
        self.emails: dict[str, OutgoingEmail] = {}

    def send(self, out: OutgoingEmail) -> SendResult:
        self.subjects[out.email_id] = out.subject
        if self.bodies:
            self.emails[out.email_id] = out
        return SendResult(None)

    def close(self) -> None:
        pass


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
        from cadence.delivery.smtp import SmtpTransport

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
        from cadence.delivery.sendgrid import SendgridTransport

        sendgrid = settings.transport.sendgrid
        return SendgridTransport(
            api_key=settings.secret("transport.sendgrid.api_key_env"),
            api_host=sendgrid.api_host,
            sandbox=sendgrid.sandbox,
            timeout=sendgrid.timeout.total_seconds(),
        )
    raise ValueError(f"unknown transport kind {kind!r}")
