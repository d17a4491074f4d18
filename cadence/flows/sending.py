"""Sending what is due: claim, render, hand to the transport, record the outcome.

The status is written before and after the transport call. A daemon that dies between the
two leaves the email `sending`; when its lease runs out, `recover_leases` turns it into
`unconfirmed`, which is never re-sent automatically: no email goes twice.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cadence.delivery.compose import OutgoingEmail, compose, unsubscribe_link
from cadence.delivery.render import RenderError
from cadence.delivery.transports.base import BatchingTransport, SendResult, TransportError

if TYPE_CHECKING:
    from cadence.config import Settings
    from cadence.delivery.render import Renderer
    from cadence.delivery.transports.base import Transport
    from cadence.ledger.claims import Claimed
    from cadence.ledger.ledger import Ledger

log = logging.getLogger("cadence.dispatch")


MAX_ATTEMPTS = 8
# A chunk is what is rendered, marked `sending` in one write and handed over together: as many
# emails as make CHUNK_PER_WORKER requests for each sending thread (the time a chunk is on the
# wire, so a stop or a new pass waits no longer for it, is its requests'), and MAX_CHUNK emails
# at most (a batching transport's requests carry many). The write that marks a chunk `sending`
# also records the chunk before last (whose hand-overs are over by then), while the last one is
# on the wire: at most two chunks are `sending` at any moment, so a crash leaves at most two
# chunks (2 * MAX_CHUNK emails) unconfirmed, for a person or a provider event to settle
CHUNK_PER_WORKER = 8
MAX_CHUNK = 256
BACKOFF_BASE = timedelta(seconds=2)
BACKOFF_CAP = timedelta(minutes=30)


def backoff(attempts: int) -> timedelta:
    """2s, 4s, 8s... up to 30 minutes, each with +-50% jitter so retries do not march together."""
    delay: timedelta = min(BACKOFF_BASE * (2**attempts), BACKOFF_CAP)
    return delay * random.uniform(0.5, 1.5)


@dataclass
class DispatchReport:
    retried: int = 0
    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    released: int = 0
    unconfirmed: int = 0
    more_due: bool = False  # stopped claiming with emails still due (the pass's time was up)


Outcome = SendResult | TransportError


@dataclass
class _InFlight:
    """A chunk marked `sending` whose hand-overs may still be running: each request's
    emails and the future of its one outcome, and each email's place in the chunk."""

    requests: list[tuple[list[Claimed], Future[Outcome]]]
    place: dict[str, int]


Pair = tuple["Claimed", OutgoingEmail]


class Requests:
    """Emails grouped into requests as they come: one each, unless the transport batches
    (`BatchingTransport`); then emails of one batch key share a request, a recipient at most
    once in each (SendGrid refuses a request that names an address twice), `max_batch` at
    most."""

    def __init__(self, transport: Transport) -> None:
        self.key_of: Callable[[OutgoingEmail], str | None] | None = None
        self.most = 1
        if isinstance(transport, BatchingTransport):
            self.key_of, self.most = transport.batch_key, max(1, transport.max_batch)
        self.groups: list[list[Pair]] = []
        self.emails: list[Pair] = []  # in the order added
        self._open: dict[str, list[tuple[list[Pair], set[str]]]] = {}

    def add(self, pair: Pair, limit: int | None = None) -> bool:
        """Put the email in a request; False (and not added) if that needs a new request
        and `limit` requests are already made."""
        key = self.key_of(pair[1]) if self.key_of is not None else None
        if key is None:
            if limit is not None and len(self.groups) >= limit:
                return False
            self.groups.append([pair])
            self.emails.append(pair)
            return True
        address = pair[1].to_email.lower()
        groups = self._open.setdefault(key, [])
        group = next((g for g in groups if address not in g[1] and len(g[0]) < self.most), None)
        if group is None:
            if limit is not None and len(self.groups) >= limit:
                return False
            group = ([], set())
            groups.append(group)
            self.groups.append(group[0])
        group[0].append(pair)
        group[1].add(address)
        self.emails.append(pair)
        return True


def _ids(sent: list[tuple[Claimed, str | None]]) -> list[tuple[str, str | None]]:
    return [(item.email.id, provider_id) for item, provider_id in sent]


@dataclass
class Dispatcher:
    store: Ledger
    transport: Transport
    renderer: Renderer
    settings: Settings
    secret: bytes
    owner: str
    should_stop: Callable[[], bool] = lambda: False
    # asked after every full claim: a daemon ends its pass after a while even with emails
    # still due, so the next pass plans what arrived meanwhile (a receipt submitted during a
    # burst of 10,000 check-ins goes out in a pass or two, not after the burst)
    keep_claiming: Callable[[], bool] = lambda: True

    def run(self, now: datetime, *, batch: int | None = None) -> DispatchReport:
        report = DispatchReport()
        report.released, report.unconfirmed = self.store.sending.recover_leases(now)
        lease: timedelta = self.settings.daemon.lease
        limit = batch or self.settings.daemon.claim_batch
        # emails handed over side by side, as many as the transport can take at once (an SMTP
        # connection takes one; SendGrid's HTTP API many): its latency, not ours, sets the pace
        width = max(1, self.transport.concurrency)
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix="send") as pool:
            # chunks handed over and not yet recorded, oldest first: never more than two
            flying: deque[_InFlight] = deque()
            while not self.should_stop():
                claimed = self.store.sending.claim_due(now, self.owner, lease, limit)
                if not claimed:
                    break
                pending: deque[tuple[Claimed, OutgoingEmail | None]] = deque(
                    (item, None) for item in claimed
                )
                while pending:
                    if self.should_stop():
                        for item, _ in pending:
                            self.store.sending.release(item.email.id)
                        break
                    requests = self._render(pending, width * CHUNK_PER_WORKER, now, report)
                    ready = requests.emails
                    # the chunk before last is recorded in the write that marks this one
                    # `sending` (one commit for both), while the last one is on the wire: the
                    # transport's latency and our writes overlap instead of adding up
                    done = flying.popleft() if len(flying) == 2 else None
                    sent = self._outcomes(done, now, report) if done else []
                    ours = (
                        self.store.sending.mark_sent_and_sending(
                            _ids(sent), now, [item.email.id for item, _ in ready], self.owner
                        )
                        if sent or ready
                        else set()
                    )
                    self._sent(sent, report)
                    flying.append(self._hand_over(requests, ours, pool))
                if len(claimed) < limit:
                    break
                if not self.keep_claiming():
                    report.more_due = True
                    break
            while flying:
                sent = self._outcomes(flying.popleft(), now, report)
                self.store.sending.mark_sent_many(_ids(sent), now)
                self._sent(sent, report)
        return report

    def _render(
        self,
        pending: deque[tuple[Claimed, OutgoingEmail | None]],
        most: int,
        now: datetime,
        report: DispatchReport,
    ) -> Requests:
        """The next chunk: emails off `pending`, rendered, as long as they fit in `most`
        requests and MAX_CHUNK emails. One that cannot be rendered is held (nothing
        half-rendered goes out); one rendered that does not fit waits, rendered, for the
        next chunk."""
        requests = Requests(self.transport)
        count = 0
        while pending and count < MAX_CHUNK:
            item, out = pending.popleft()
            if out is None:
                out = self._compose(item, now, report)
                if out is None:
                    continue
            if not requests.add((item, out), most):
                pending.appendleft((item, out))
                break
            count += 1
        return requests

    def _hand_over(self, requests: Requests, ours: set[str], pool: ThreadPoolExecutor) -> _InFlight:
        """Hand the emails just marked `sending` (`ours`) to the sending threads, a request
        at a time; nothing not marked `sending` goes at all."""
        flight = _InFlight([], {item.email.id: i for i, (item, _) in enumerate(requests.emails)})
        for group in requests.groups:
            going = [(item, out) for item, out in group if item.email.id in ours]
            if going:
                future = pool.submit(self._call, [out for _, out in going])
                flight.requests.append(([item for item, _ in going], future))
        return flight

    def _outcomes(
        self, flight: _InFlight, now: datetime, report: DispatchReport
    ) -> list[tuple[Claimed, str | None]]:
        """Wait for a chunk's hand-overs; record each failure, and return the emails sent
        (with the provider's id), in the chunk's order, for the caller to record in one
        write (a customer's contact times are kept in that order)."""
        sent: list[tuple[Claimed, str | None]] = []
        for group, future in flight.requests:
            outcome = future.result()
            for item in group:
                if isinstance(outcome, TransportError):
                    self._failed(item, outcome, now, report)
                else:
                    sent.append((item, outcome.provider_id))
        return sorted(sent, key=lambda pair: flight.place[pair[0].email.id])

    def _sent(self, sent: list[tuple[Claimed, str | None]], report: DispatchReport) -> None:
        """Report emails whose sending is recorded."""
        for item, _ in sent:
            email = item.email
            report.sent.append(email.id)
            log.info(
                "sent email=%s customer=%s messages=%s",
                email.id,
                email.customer_id,
                ",".join(email.members),
            )

    def _call(self, outs: Sequence[OutgoingEmail]) -> Outcome:
        """One request: an email, or emails of one batch key (one outcome for all)."""
        try:
            if len(outs) == 1:
                return self.transport.send(outs[0])
            assert isinstance(self.transport, BatchingTransport)  # only these batch
            return self.transport.send_many(outs)
        except TransportError as exc:
            return exc
        except Exception as exc:  # noqa: BLE001 - every failure becomes a status, never a crash
            # an unknown error after the hand-over began: the provider may have it
            return TransportError(f"{type(exc).__name__}: {exc}", maybe_sent=True)

    def _unsubscribe(self, item: Claimed, now: datetime) -> str | None:
        if item.email.transactional or item.email.to_owner:
            return None
        base = self.settings.unsubscribe.base_url
        return unsubscribe_link(base, self.secret, item.customer.id, item.members, now)

    def _failed(
        self, item: Claimed, exc: TransportError, now: datetime, report: DispatchReport
    ) -> None:
        """Every failure ends in a status: unconfirmed when the provider may have it (never
        re-sent blindly), failed when retrying cannot help or the retries are spent, else a
        retry after exponential backoff with jitter (or when the provider said)."""
        email = item.email
        ids = f"email={email.id} customer={email.customer_id} messages={','.join(email.members)}"
        if exc.maybe_sent:
            self.store.sending.mark_unconfirmed(email.id, exc.reason, now)
            report.unconfirmed += 1
            log.error("unconfirmed %s: %s", ids, exc.reason)
        elif exc.permanent or item.attempts + 1 >= MAX_ATTEMPTS:
            spent = "" if exc.permanent else f" (after {item.attempts + 1} attempts)"
            self.store.sending.mark_failed(email.id, exc.reason + spent, now)
            report.failed.append(email.id)
            log.error("failed %s: %s%s", ids, exc.reason, spent)
        else:
            at = exc.retry_at or now + backoff(item.attempts)
            self.store.sending.retry_later(email.id, max(at, now), exc.reason)
            report.retried += 1
            log.warning("retry %s at %s: %s", ids, at.isoformat(), exc.reason)

    def _compose(
        self, item: Claimed, now: datetime, report: DispatchReport
    ) -> OutgoingEmail | None:
        email = item.email
        try:
            return compose(
                email,
                item.customer,
                item.members,
                self.renderer,
                self.settings.sender,
                self._unsubscribe(item, now),
                now,
            )
        except (RenderError, ValueError) as exc:
            # nothing half-rendered goes out: the members wait, with the error, for a fix
            self.store.sending.hold_email(email.id, f"held: {exc}", now=now)
            report.held.append(email.id)
            log.warning("held email=%s customer=%s: %s", email.id, email.customer_id, exc)
            return None
