"""A transport that only records: what `simulate` and `preview` hand their emails to."""

from __future__ import annotations

from collections.abc import Sequence

from cadence.delivery.compose import OutgoingEmail
from cadence.delivery.transports.base import SendResult

#: every email of a chunk in one hand-over: nothing leaves, so nothing is gained by sending
#: them one at a time, and each hand-over costs the dispatcher two writes
BATCH_KEY = "recorded"


class RecordingTransport:
    """Takes every email and keeps what it was (its subject and sender; with `bodies`, the
    whole email), sending nothing: the transport of `simulate` and `preview`, whose passes run on
    a scratch copy of the ledger. It takes a whole chunk at once (a batching transport whose
    emails all share a key), so a pass that sends ten emails records them in one write."""

    concurrency = 1
    max_batch = 256

    def __init__(self, *, bodies: bool = False) -> None:
        self.bodies = bodies
        self.subjects: dict[str, str] = {}
        self.senders: dict[str, tuple[str, str | None]] = {}  # who each is from: email, name
        self.emails: dict[str, OutgoingEmail] = {}

    def send(self, out: OutgoingEmail) -> SendResult:
        self.subjects[out.email_id] = out.subject
        self.senders[out.email_id] = (out.from_email, out.from_name)
        if self.bodies:
            self.emails[out.email_id] = out
        return SendResult(None)

    def batch_key(self, out: OutgoingEmail) -> str | None:
        return BATCH_KEY

    def send_many(self, outs: Sequence[OutgoingEmail]) -> SendResult:
        for out in outs:
            self.send(out)
        return SendResult(None)

    def close(self) -> None:
        pass
