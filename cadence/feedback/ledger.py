"""What the HTTP endpoints write: an unsubscribe from a link, a batch of SendGrid events.

Plain synchronous functions over the store, so they are tested without a server and the
request handlers only translate HTTP. They are careful about the two ways a provider or a
person repeats themselves: the same click twice, the same webhook batch posted again (SendGrid
retries whatever did not get a 2xx), possibly at the same moment.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from cadence.delivery.unsubscribe import UnsubscribeClaim
from cadence.feedback.webhook import Batch, Mapped
from cadence.model import Customer, EmailStatus, Event

if TYPE_CHECKING:
    from cadence.ledger.ledger import Ledger

log = logging.getLogger("cadence.http")

#: events that change who may be written to; they are dropped when about another address
ADDRESS_EVENTS = frozenset({"bounced", "spam_reported"})


def unsubscribe_event_id(token: str) -> str:
    """One id per link: a second click on the same link is the same event (a no-op)."""
    return "u:" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


def _covered(customer: Customer, categories: Sequence[str]) -> bool:
    reach = customer.reach
    if reach.unsubscribed_all:
        return True
    return bool(categories) and set(categories) <= reach.unsubscribed_categories


def _add_once(store: Ledger, items: list[tuple[Event, str]], now: datetime) -> int:
    """Insert the events in one transaction; when a concurrent request stored some of them
    first (two clicks, SendGrid retrying while we were busy), insert the rest. Returns how
    many this call stored."""
    if not items:
        return 0
    try:
        store.ingest.add_events(items, now=now)
        return len(items)
    except Exception:
        present = store.ingest.event_digests([e.id for e, _ in items])
        if not present:
            raise
        rest = [(e, d) for e, d in items if e.id not in present]
        log.info(
            "%d of %d events were stored meanwhile by a concurrent request",
            len(present),
            len(items),
        )
        if rest:
            store.ingest.add_events(rest, now=now)  # a second failure is a real one: it propagates
        return len(rest)


def record_unsubscribe(store: Ledger, claim: UnsubscribeClaim, token: str, now: datetime) -> str:
    """An `unsubscribed` event at `now` for a verified link. Returns what happened:
    `recorded`, `repeat` (already recorded, and still in force) or `unknown` (no such
    customer: nothing to write to, nothing stored)."""
    customer = store.reads.customer(claim.customer_id)
    if customer is None:
        log.warning("unsubscribe link for unknown customer %s: nothing stored", claim.customer_id)
        return "unknown"
    categories = list(claim.categories or ())
    event_id = unsubscribe_event_id(token)
    if store.ingest.event_digests([event_id]):
        if _covered(customer, categories):
            return "repeat"
        # the link was used, then the customer resubscribed: this click means it again
        event_id = f"{event_id}:{int(now.timestamp())}"
        if store.ingest.event_digests([event_id]):
            return "repeat"
    data: dict[str, object] = {
        "source": "unsubscribe link",
        "issued_at": claim.issued_at.isoformat(),
    }
    if categories:
        data["categories"] = categories
    event = Event(event_id, claim.customer_id, "unsubscribed", now, data)
    digest = hashlib.sha256(f"{event_id}\n{token}".encode()).hexdigest()
    return "recorded" if _add_once(store, [(event, digest)], now) else "repeat"


@dataclass(frozen=True, slots=True)
class Stored:
    """What became of a batch: the response body SendGrid gets (and logs)."""

    stored: int
    duplicates: int
    ignored: int
    settled: int

    def as_dict(self) -> dict[str, int]:
        return {
            "stored": self.stored,
            "duplicates": self.duplicates,
            "ignored": self.ignored,
            "settled": self.settled,
        }


def _about_another_address(m: Mapped, customer: Customer) -> bool:
    """A bounce or spam report for an address the customer no longer has must not suppress
    the address they have now."""
    if m.event is None or m.event.type not in ADDRESS_EVENTS or not m.address:
        return False
    return m.address.strip().lower() != customer.email.strip().lower()


def store_batch(store: Ledger, batch: Batch, now: datetime) -> Stored:
    """Ledger a parsed batch's new events in one `add_events` call (all or nothing), as
    received at `now`, then settle the `unconfirmed` emails SendGrid's events prove it
    took: as sent, or as failed when SendGrid dropped them (`webhook.SETTLING`)."""
    customers = store.reads.customers_by_id(sorted({m.customer_id for m in batch.events}))
    ignored = batch.ignored
    events: list[Mapped] = []
    settles: dict[str, Mapped] = {}  # email id -> the event that settles it
    for m in batch.events:
        customer = customers.get(m.customer_id)
        if customer is None:
            log.warning("SendGrid event %s names unknown customer %s", m.sg_event_id, m.customer_id)
            ignored += 1
            continue
        if m.settles:
            _settling(settles, m.settles, m)
        if m.event is None:  # e.g. `processed`: it settles an email, the ledger keeps nothing
            ignored += 1
            continue
        if _about_another_address(m, customer):
            log.info(
                "SendGrid %s %s is about %s, no longer customer %s's address: not applied",
                m.event.type,
                m.sg_event_id,
                m.address,
                customer.id,
            )
            ignored += 1
            continue
        events.append(m)
    seen = store.ingest.event_digests([m.event.id for m in events if m.event is not None])
    new = [(m.event, m.digest) for m in events if m.event is not None and m.event.id not in seen]
    stored = _add_once(store, new, now)
    duplicates = batch.repeated + len(events) - stored
    settled = 0
    if settles:
        waiting = {email.id for email, _ in store.sending.unconfirmed_emails()}
        for email_id, m in settles.items():
            if email_id in waiting and _settle(store, email_id, m, now):
                settled += 1
    return Stored(stored, duplicates, ignored, settled)


def _settling(settles: dict[str, Mapped], email_id: str, m: Mapped) -> None:
    """Keep the event that settles `email_id` in this batch: the first, unless a later one
    fails it. A `dropped` is SendGrid's last word on an email (it comes after `processed`,
    which says only that SendGrid took it), so in one batch the failure wins."""
    first = settles.get(email_id)
    if first is None or (
        m.settles_as is EmailStatus.FAILED and first.settles_as is not EmailStatus.FAILED
    ):
        settles[email_id] = m


def _settle(store: Ledger, email_id: str, m: Mapped, now: datetime) -> bool:
    """Settle one `unconfirmed` email as the event says (`webhook.SETTLING`): sent, or failed
    with SendGrid's reason (its messages are not planned again: SendGrid will not deliver
    them either)."""
    by = f"SendGrid event {m.sg_event_id}"
    if m.settles_as is EmailStatus.FAILED:
        if store.sending.fail_unconfirmed(email_id, f"{m.failure} ({by})", now):
            log.info("email %s settled as failed by %s: %s", email_id, by, m.failure)
            return True
        return False
    if store.sending.settle_email(email_id, sent=True, by=by, at=now):
        log.info("email %s settled as sent by %s", email_id, by)
        return True
    return False
