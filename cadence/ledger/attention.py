"""Which customers want the planner's attention, and from when: the dirty mark (plan again
now, something they can receive changed) and the look again from a time (their plans stand,
their history moved); and their last contact times, which the same write keeps (`revise`).

Each takes an open connection, so it runs inside the caller's one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

from sqlalchemy import Connection, select, update

from cadence.engine.scope import contact_keys
from cadence.ledger.driver import Driver
from cadence.ledger.statements import chunks
from cadence.ledger.tables import customers


def mark_dirty(conn: Connection, ids: Iterable[str]) -> None:
    """The customers must be planned again: something they can receive changed. On
    PostgreSQL their rows are locked in id order first (an UPDATE alone locks them in the
    order its scan meets them, which is not the ids'), the order every writer of several
    customers takes them, so two such transactions wait for each other, never deadlock."""
    for part in chunks(sorted(set(ids))):
        if conn.dialect.name == "postgresql":
            conn.execute(
                select(customers.c.id)
                .where(customers.c.id.in_(part))
                .order_by(customers.c.id)
                .with_for_update()
            )
        conn.execute(update(customers).where(customers.c.id.in_(part)).values(dirty=True))


def look_again(db: Driver, ids: Iterable[str], at: datetime) -> None:
    """The customers' plans stand (an email of theirs went, or failed, as planned) but want a
    fresh look from `at`: their history and contact times moved. Unlike the dirty mark, this
    does not stop their other due emails from being claimed meanwhile (see `revise`)."""
    revise(db, ids, at)


class Contact(Protocol):
    """What a last-contact time is kept from: a `Message`, or the few columns of one."""

    @property
    def customer_id(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def human(self) -> bool: ...
    @property
    def to(self) -> str | None: ...
    @property
    def sent_at(self) -> datetime | None: ...
    @property
    def channel(self) -> str: ...


class Settled(NamedTuple):
    """A message settled by a dispatch write, read as only the columns a contact needs."""

    customer_id: str
    role: str
    human: bool
    to: str | None
    sent_at: datetime | None
    channel: str = "email"  # what cadence sends


def touch_contacts(db: Driver, sent: Sequence[Contact], at: datetime | None = None) -> None:
    """Keep each customer's last contact times ("any", "human", "role:<r>", "role:<r>:human",
    "channel:<c>") from messages that went (at `at`, or their own `sent_at`). Internal owner
    alerts did not reach the customer and count for nothing (see `revise`)."""
    revise(db, (), None, sent, at)


def revise(
    db: Driver,
    ids: Iterable[str],
    look_at: datetime | None,
    went: Sequence[Contact] = (),
    went_at: datetime | None = None,
) -> None:
    """The one writer of a customer's look again and of its contact times. The customers of
    `ids` want a fresh look from `look_at` (their `next_plan_at` moves up to it, never
    later); those of `went`, messages that went (at `went_at`, or their own `sent_at`), keep
    their last contact times. One read and one write, whichever of the two and however many
    customers: the rows are read in id order, locked on PostgreSQL (each transaction that
    writes several customers takes them in one order, so two never deadlock), and written
    back where they change. The dispatcher asks it for every chunk it records."""
    looked = set(ids) if look_at is not None else set()
    latest = contacts_by_customer(went, went_at)
    wanted = sorted(looked | latest.keys())
    if not wanted:
        return
    lock = " FOR UPDATE" if db.postgres else ""
    updates = []
    for part in chunks(wanted):
        where, params = db.in_ids("id", part)
        for r in db.select(customers, _REVISED, f"{where} ORDER BY id{lock}", params):
            cid, nxt, contact = r["id"], r["next_plan_at"], r["last_contact"]
            if cid in looked and (nxt is None or (look_at is not None and nxt > look_at)):
                nxt = look_at
            merged = merge_contacts(contact, latest[cid]) if cid in latest else None
            if nxt != r["next_plan_at"] or merged is not None:
                kept = contact if merged is None else merged
                updates.append({"id": cid, "next_plan_at": nxt, "last_contact": kept})
    db.update(customers, "id", updates, single=True)


#: what `revise` reads of a customer and writes back
_REVISED = ("id", "next_plan_at", "last_contact")


def contacts_by_customer(
    sent: Sequence[Contact], at: datetime | None = None
) -> dict[str, dict[str, datetime]]:
    """The latest contact time of each key, by customer, that these messages make (see
    `touch_contact`); keys in the order the messages first name them."""
    by_customer: dict[str, dict[str, datetime]] = {}
    for m in sent:
        when = at or m.sent_at
        if when is None or m.to is not None:
            continue
        keys = by_customer.setdefault(m.customer_id, {})
        for key in contact_keys(m.role, m.human, m.channel):
            if key not in keys or keys[key] < when:
                keys[key] = when
    return by_customer


def merge_contacts(
    current: dict[str, str] | None, latest: dict[str, datetime]
) -> dict[str, str] | None:
    """A customer's `last_contact` with these times in, where later; None if unchanged."""
    merged = dict(current or {})
    for key, when in latest.items():
        old = merged.get(key)
        if old is None or datetime.fromisoformat(old) < when:
            merged[key] = when.astimezone(UTC).isoformat()
    return None if merged == current else merged
