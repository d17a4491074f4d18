"""The `file` transport: each email an RFC 5322 `.eml` file in a folder."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from cadence.clock import utcnow
from cadence.delivery.compose import OutgoingEmail
from cadence.delivery.mime import to_bytes
from cadence.delivery.transports.base import Clock, SendResult, TransportError

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
