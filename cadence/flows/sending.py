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
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
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
# What is `sending` is what is on the wire. An email is marked `sending` in the write just
# before its request goes, and recorded in the write after its request came back, which also
# marks the requests that take the freed places: at most `concurrency` requests are `sending`
# at any moment, so a crash leaves at most their emails `unconfirmed` for a provider event or a
# person to settle. Rendering runs ahead in chunks of up to CHUNK_PER_WORKER requests for each
# sending thread and MAX_CHUNK emails (a batching transport's requests carry many): an email
# rendered and not yet marked is only `claimed`, and goes back to the plan if the daemon dies.
CHUNK_PER_WORKER = 8
MAX_CHUNK = 256
# Retries after a temporary failure (a 429, a 5xx, a refused connection) back off: a floor of
# BACKOFF_BASE, doubling with each attempt, +-50% jitter so retries do not march together, at
# most BACKOFF_CAP. A provider that says when to come back (429 with X-RateLimit-Reset) is
# honoured within the cap: a reset in the past or a second away still waits the floor, a
# reset in year 5138 waits the cap.
BACKOFF_BASE = timedelta(seconds=2)
BACKOFF_CAP = timedelta(minutes=30)


def backoff(attempts: int, asked: timedelta | None = None) -> timedelta:
    """How long to wait before the next try, after `attempts` earlier calls (0 for the
    first failure): 2s, 4s, 8s... (+-50%), at most 30 minutes, never less than `asked` (the
    provider's own delay) unless that is more than the cap."""
    delay: timedelta = min(BACKOFF_BASE * (2 ** min(attempts, 20)), BACKOFF_CAP)
    delay = delay * random.uniform(0.5, 1.5)
    if asked is not None and asked > delay:
        delay = min(asked, BACKOFF_CAP)
    return min(delay, BACKOFF_CAP)


@dataclass
class DispatchReport:
    retried: int = 0
    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    released: int = 0
    unconfirmed: int = 0
    more_due: bool = False  # stopped claiming with emails still due (the pass's time was up)
    most_sending: int = 0  # the most emails `sending` at once (what a crash could strand)


Outcome = SendResult | TransportError
Pair = tuple["Claimed", OutgoingEmail]


@dataclass(frozen=True, slots=True)
class _Request:
    """One request's emails, and their place in the claim (outcomes are recorded in it)."""

    pairs: tuple[Pair, ...]
    place: int

    @property
    def ids(self) -> list[str]:
        return [item.email.id for item, _ in self.pairs]


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


class _Window:
    """The requests on the wire, at most `width`: each one's future and its request."""

    def __init__(self, pool: ThreadPoolExecutor, width: int) -> None:
        self.pool, self.width = pool, width
        self.flying: dict[Future[Outcome], _Request] = {}

    def free(self) -> int:
        return self.width - len(self.flying)

    def emails(self) -> int:
        return sum(len(r.pairs) for r in self.flying.values())

    def finished(self, block: bool) -> list[tuple[_Request, Outcome]]:
        """The requests that came back (waiting for one if `block`), in claim order."""
        if not self.flying:
            return []
        done, _ = wait(self.flying, timeout=None if block else 0, return_when=FIRST_COMPLETED)
        out = [(self.flying.pop(f), f.result()) for f in done]
        return sorted(out, key=lambda pair: pair[0].place)


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
    # how long a message may wait when it names no `expires_at` (the rules' `max_delay`): a
    # retry is never put past a member's expiry
    max_delay: timedelta | None = None
    # where what became of each email is logged (a scratch copy's passes have their own)
    log: logging.Logger = log
    _placed: int = field(default=0, init=False, repr=False)

    def run(self, now: datetime, *, batch: int | None = None) -> DispatchReport:
        # leases that ran out are the pass's to recover, before it plans (`run_pass`)
        report = DispatchReport()
        limit = batch or self.settings.daemon.claim_batch
        # emails handed over side by side, as many as the transport can take at once (an SMTP
        # connection takes one; SendGrid's HTTP API many): its latency, not ours, sets the pace
        width = max(1, self.transport.concurrency)
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix="send") as pool:
            window = _Window(pool, width)
            ready: deque[_Request] = deque()  # rendered, still only `claimed`
            pending: deque[tuple[Claimed, OutgoingEmail | None]] = deque()  # claimed
            claims, more = 0, True
            while True:
                stopping = self.should_stop()
                if not stopping and not ready and not pending and more:
                    if claims and not self.keep_claiming():
                        report.more_due, more = True, False
                    else:
                        claimed = self.store.sending.claim_due(
                            now, self.owner, self.settings.daemon.lease, limit
                        )
                        claims, more = claims + 1, len(claimed) == limit
                        pending.extend((item, None) for item in claimed)
                if not stopping and not ready and pending:
                    ready.extend(self._render(pending, width * CHUNK_PER_WORKER, now, report))
                # wait for a request only when no place is free for the next one
                going_on = bool(ready) and not stopping
                back = window.finished(block=not going_on or window.free() == 0)
                going = [ready.popleft() for _ in range(min(window.free(), len(ready)))]
                if stopping:
                    ready.extendleft(reversed(going))
                    going = []
                self._record(back, going, window, now, report)
                idle = not window.flying and not going
                if idle and (stopping or not (ready or pending or more)):
                    break
            for request in ready:
                for item, _ in request.pairs:
                    self.store.sending.release(item.email.id)
            for item, _ in pending:
                self.store.sending.release(item.email.id)
        return report

    def _record(
        self,
        back: list[tuple[_Request, Outcome]],
        going: list[_Request],
        window: _Window,
        now: datetime,
        report: DispatchReport,
    ) -> None:
        """Failures are recorded first, each on its own; then one write records the
        requests that came back as sent and marks the next ones `sending` (their places are
        free), and those go. So the emails `sending` never outnumber the requests' places.
        Nothing not marked `sending` goes at all (a lease lost meanwhile)."""
        for request, outcome in back:
            if isinstance(outcome, TransportError):
                for item, _ in request.pairs:
                    self._failed(item, outcome, now, report)
        sent = [
            (item, outcome.provider_id)
            for request, outcome in back
            if isinstance(outcome, SendResult)
            for item, _ in request.pairs
        ]
        ids = [email_id for request in going for email_id in request.ids]
        ours = (
            self.store.sending.mark_sent_and_sending(_ids(sent), now, ids, self.owner)
            if sent or ids
            else set()
        )
        self._sent(sent, report)
        for request in going:
            pairs = tuple(pair for pair in request.pairs if pair[0].email.id in ours)
            if pairs:
                mine = _Request(pairs, request.place)
                window.flying[window.pool.submit(self._call, [out for _, out in pairs])] = mine
        report.most_sending = max(report.most_sending, window.emails())

    def _render(
        self,
        pending: deque[tuple[Claimed, OutgoingEmail | None]],
        most: int,
        now: datetime,
        report: DispatchReport,
    ) -> list[_Request]:
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
        # places run on across the pass's chunks: requests of two chunks that come back
        # together are recorded in claim order (a customer's contact times are kept so)
        place = {item.email.id: self._placed + i for i, (item, _) in enumerate(requests.emails)}
        self._placed += len(requests.emails)
        made = [_Request(tuple(group), place[group[0][0].email.id]) for group in requests.groups]
        return sorted(made, key=lambda request: request.place)

    def _sent(self, sent: list[tuple[Claimed, str | None]], report: DispatchReport) -> None:
        """Report emails whose sending is recorded."""
        for item, _ in sent:
            email = item.email
            report.sent.append(email.id)
            self.log.info(
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
        """Every failure ends in a status that says why: unconfirmed when the provider may
        have it (never re-sent blindly), failed when retrying cannot help or the retries are
        spent, expired when the next try would be past a member's expiry, else a retry after
        `backoff`."""
        email = item.email
        ids = f"email={email.id} customer={email.customer_id} messages={','.join(email.members)}"
        if exc.maybe_sent:
            self.store.sending.mark_unconfirmed(email.id, exc.reason, now)
            report.unconfirmed += 1
            self.log.error("unconfirmed %s: %s", ids, exc.reason)
            return
        if exc.permanent or item.attempts + 1 >= MAX_ATTEMPTS:
            spent = "" if exc.permanent else f" (after {item.attempts + 1} attempts)"
            self.store.sending.mark_failed(email.id, exc.reason + spent, now)
            report.failed.append(email.id)
            self.log.error("failed %s: %s%s", ids, exc.reason, spent)
            return
        at = now + backoff(item.attempts, exc.retry_after)
        expiry = self._expiry(item, now)
        if expiry is not None and at >= expiry:
            reason = (
                f"expired: {exc.reason}; the next try, at {at.isoformat(timespec='seconds')}, "
                f"would be past its expiry at {expiry.isoformat(timespec='seconds')}"
            )
            self.store.sending.expire_email(email.id, reason, now)
            report.expired.append(email.id)
            self.log.error("expired %s: %s", ids, reason)
            return
        self.store.sending.retry_later(email.id, at, exc.reason)
        report.retried += 1
        self.log.warning("retry %s at %s: %s", ids, at.isoformat(), exc.reason)

    def _expiry(self, item: Claimed, now: datetime) -> datetime | None:
        """The earliest expiry among the email's members (None when the rules' `max_delay`
        is not known here and no member names one)."""
        times = [
            m.expires(self.max_delay, now) if self.max_delay is not None else m.expires_at
            for m in item.members
        ]
        known = [t for t in times if t is not None]
        return min(known) if known else None

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
                self.settings.senders,
            )
        except (RenderError, ValueError) as exc:
            # nothing half-rendered goes out: the members wait, with the error, for a fix
            self.store.sending.hold_email(
                email.id, f"held: {str(exc) or type(exc).__name__}", now=now
            )
            report.held.append(email.id)
            self.log.warning("held email=%s customer=%s: %s", email.id, email.customer_id, exc)
            return None
