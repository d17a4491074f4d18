"""What a transport is: the one interface the dispatcher hands composed emails to, what it
reports back, and what it declares it can do.

Every transport only changes the wire format of an `OutgoingEmail`; everything the customer
sees was decided by `compose`. A transport reports what it knows about failure precisely,
because the dispatcher must never send an email twice: `TransportError.maybe_sent` says the
provider may have the email (the status becomes `unconfirmed`, never retried automatically),
`permanent` says retrying cannot help.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from cadence.delivery.compose import OutgoingEmail

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
        retry_after: timedelta | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.maybe_sent = maybe_sent
        # how long the provider asked us to wait (429 with X-RateLimit-Reset), measured on
        # this host's clock when the answer came: a delay, so a virtual `--now` cannot skew it
        self.retry_after = retry_after


class Transport(Protocol):
    """Hands one email over. `concurrency`: how many hand-overs may run side by side (an
    SMTP connection takes one at a time; SendGrid's HTTP API many)."""

    concurrency: int

    def send(self, out: OutgoingEmail) -> SendResult: ...

    def close(self) -> None: ...


@runtime_checkable
class BatchingTransport(Transport, Protocol):
    """A transport that can hand several emails over in one request (SendGrid: one
    personalization each). `batch_key` says which emails may share a request (None: this one
    goes alone); `send_many` takes emails of one key with distinct recipients, all of which
    share the one outcome."""

    max_batch: int

    def batch_key(self, out: OutgoingEmail) -> str | None: ...

    def send_many(self, outs: Sequence[OutgoingEmail]) -> SendResult: ...
