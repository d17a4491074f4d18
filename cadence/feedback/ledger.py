"""What the HTTP endpoints write: an unsubscribe from a link, a batch of SendGrid events, a
customer's reply, the choices saved on their preference page.

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

from cadence.delivery.unsubscribe import PreferencesClaim, UnsubscribeClaim
from cadence.feedback.inbound import Reply, mask
from cadence.feedback.webhook import Batch, Mapped
from cadence.model import Customer, Email, EmailStatus, Event

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


def _event_id(prefix: str, *parts: str) -> str:
    return prefix + hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Choice:
    """What a customer saved on their preference page: the categories they left (none: they
    want them all) and the most emails a week they want (None: as they come)."""

    left: tuple[str, ...]
    max_per_week: int | None

    def holds_for(self, customer: Customer) -> bool:
        reach = customer.reach
        return (
            set(self.left) == reach.unsubscribed_categories
            and self.max_per_week == reach.max_per_week
        )


def record_preferences(
    store: Ledger, claim: PreferencesClaim, token: str, choice: Choice, now: datetime
) -> str:
    """A `preferences_changed` event at `now` for a verified preference link: `recorded`,
    `repeat` (the same form sent twice, its choice still in force) or `unknown` (no such
    customer: nothing stored). The id is one per link and choice, so a double submit is one
    event; the same choice made again after another one is a new event."""
    customer = store.reads.customer(claim.customer_id)
    if customer is None:
        log.warning("preference link for unknown customer %s: nothing stored", claim.customer_id)
        return "unknown"
    said = f"{','.join(choice.left)}|{choice.max_per_week}"
    event_id = _event_id("pref:", token, said)
    if store.ingest.event_digests([event_id]):
        if choice.holds_for(customer):
            return "repeat"
        event_id = f"{event_id}:{int(now.timestamp())}"
        if store.ingest.event_digests([event_id]):
            return "repeat"
    data: dict[str, object] = {
        "source": "preference page",
        "categories": list(choice.left),
        "max_per_week": choice.max_per_week,
    }
    event = Event(event_id, claim.customer_id, "preferences_changed", now, data)
    digest = hashlib.sha256(f"{event_id}\n{token}\n{said}".encode()).hexdigest()
    return "recorded" if _add_once(store, [(event, digest)], now) else "repeat"


@dataclass(frozen=True, slots=True)
class Replied:
    """What became of an inbound email: the response body SendGrid gets (and logs)."""

    stored: int
    duplicates: int
    unknown_sender: bool

    def as_dict(self) -> dict[str, int | bool]:
        return {
            "stored": self.stored,
            "duplicates": self.duplicates,
            "unknown_sender": self.unknown_sender,
        }


def _answered(store: Ledger, reply: Reply) -> list[Email]:
    """Our emails the reply names in its thread, nearest first; alerts to an account owner
    are left out (a reply to one is the owner's, not the customer's)."""
    found = store.reads.emails_by_id(reply.answers) if reply.answers else {}
    return [found[i] for i in reply.answers if i in found and not found[i].to_owner]


def repliers(store: Ledger, reply: Reply) -> list[tuple[Customer, Email | None]]:
    """Who wrote, each with the email of theirs it answers if known. The sender's address
    decides when it is a customer's (the thread picks among customers sharing it); an
    address we do not know is the customer of the email it answers (their alias, their
    phone); neither: nobody."""
    answered = _answered(store, reply)
    by_address = store.reads.customers_with_email(reply.sender)
    if by_address:
        ids = {c.id for c in by_address}
        mine = next((e for e in answered if e.customer_id in ids), None)
        if mine is not None:
            return [(c, mine) for c in by_address if c.id == mine.customer_id]
        return [(c, None) for c in by_address]
    for email in answered:
        customer = store.reads.customer(email.customer_id)
        if customer is not None:
            return [(customer, email)]
    return []


def record_reply(store: Ledger, reply: Reply, now: datetime) -> Replied:
    """A `replied` event at `now` (when it reached us) for each customer who wrote. Its id
    comes from the reply's own identity (`Reply.key`) and the customer, so SendGrid posting
    it again stores nothing new. An unknown sender stores nothing and is logged with the
    address masked."""
    found = repliers(store, reply)
    if not found:
        log.info("reply from unknown sender %s: nothing stored", mask(reply.sender))
        return Replied(0, 0, unknown_sender=True)
    items: list[tuple[Event, str]] = []
    for customer, email in found:
        event_id = _event_id("reply:", reply.key, customer.id)
        data: dict[str, object] = {"source": "inbound email", "subject": reply.subject}
        if email is not None:  # `email_id`, as SendGrid's events say it: the report counts it
            data["email_id"], data["role"] = email.id, email.role
        digest = hashlib.sha256(f"{event_id}\n{reply.key}".encode()).hexdigest()
        items.append((Event(event_id, customer.id, "replied", now, data), digest))
    seen = store.ingest.event_digests([e.id for e, _ in items])
    new = [(e, d) for e, d in items if e.id not in seen]
    stored = _add_once(store, new, now)
    return Replied(stored, len(items) - stored, unknown_sender=False)


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
