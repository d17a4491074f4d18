"""The dispatcher's writes around a hand-over, chunk by chunk: `claimed -> sending` before it,
`sending -> sent` (with the members' decisions, their history and the customers' contact
times) after it.

Through `Driver`, not SQLAlchemy: these run for every chunk, on the thread that also feeds
the sending threads, so their cost per row is what the dispatcher's pace is made of. What is
written is what `DispatchOps._settle_many` writes, value for value
(tests/integration/test_store_dispatch_writing.py compares the two).

A statement per step, whatever the chunk's size: on PostgreSQL each is a round trip, and on
SQLite each statement, and each row read, gives up the GIL the sending threads take (see
`driver._parts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cadence.ledger.columns import HISTORY
from cadence.ledger.common import (
    Settled,
    chunks,
    contacts_by_customer,
    look_again,
    merge_contacts,
)
from cadence.ledger.driver import Driver
from cadence.ledger.tables import customers, decisions, emails, messages
from cadence.model import EmailStatus, Status

#: what a member's decision history and its customer's contact times need
MEMBER = (
    "id",
    "customer_id",
    "send_at",
    "rule",
    "details",
    "rules_version",
    "role",
    "human",
    "recipient",
)


def mark_sending(db: Driver, ids: Sequence[str], owner: str, now: datetime | None) -> set[str]:
    """`claimed -> sending` for those of `ids` still claimed by `owner` (and, given `now`,
    whose lease has not run out); returns them. Only those may be handed over."""
    ours: set[str] = set()
    for part in chunks(list(ids)):
        where, params = db.in_ids("id", part)
        text = (
            "UPDATE emails SET status = ?, attempts = attempts + 1 "
            f"WHERE {where} AND status = ? AND lease_owner = ?"
        )
        args: list[Any] = [EmailStatus.SENDING.value, *params, EmailStatus.CLAIMED.value, owner]
        if now is not None:
            text += " AND lease_until > ?"
            args.append(db.time(now))
        ours.update(i for (i,) in db.fetch(text + " RETURNING id", args))
    return ours


def record_sent(db: Driver, sent: Sequence[tuple[str, str | None]], at: datetime) -> None:
    """Emails the transport took (id, provider id), at `at`: the emails `sent`, their members
    settled `sent` (each with a line of decision history), the customers' contact times kept
    and their plans looked at again."""
    if not sent:
        return
    db.update(
        emails,
        "id",
        ("provider_id",),
        [(i, provider) for i, provider in sent],
        fixed={
            "status": EmailStatus.SENT.value,
            "sent_at": at,
            "updated_at": at,
            "lease_owner": None,
        },
        single=True,
    )
    email_of: dict[str, str] = {}
    owners: set[str] = set()
    for part in chunks([i for i, _ in sent]):
        where, params = db.in_ids("id", part)
        for r in db.select(emails, ("id", "customer_id", "members"), where, params):
            owners.add(r["customer_id"])
            email_of.update({m: r["id"] for m in r["members"]})
    members = _members(db, sorted(email_of))
    if not members:
        return
    status = str(Status.SENT)
    reasons = {m["id"]: f"sent in {email_of[m['id']]}" for m in members}
    db.update(
        messages,
        "id",
        ("reason",),
        [(m["id"], reasons[m["id"]]) for m in members],
        fixed={
            "status": status,
            "final": True,
            "in_flight": False,
            "decided_at": at,
            "sent_at": at,
        },
        single=True,
    )
    db.insert(
        decisions,
        HISTORY,
        [
            (
                m["id"],
                m["customer_id"],
                at,
                status,
                m["send_at"],
                email_of[m["id"]],
                m["rule"],
                reasons[m["id"]],
                m["details"] or {},
                m["rules_version"],
            )
            for m in members
        ],
        single=True,
    )
    # contact times taken email by email in the order sent (a customer's new keys go into
    # its last_contact in that order, as when its emails were recorded one chunk each)
    rank = {email_id: i for i, (email_id, _) in enumerate(sent)}
    contacts = [
        Settled(m["customer_id"], m["role"], m["human"], m["recipient"], at)
        for m in sorted(members, key=lambda m: (rank[email_of[m["id"]]], m["id"]))
    ]
    _touch(db, sorted(owners), contacts, at)


def _members(db: Driver, ids: Sequence[str]) -> list[dict[str, Any]]:
    """The members' rows, in id order; on PostgreSQL locked in that order, as a claim locks
    messages (two transactions taking overlapping sets then cannot deadlock)."""
    lock = " FOR UPDATE" if db.postgres else ""
    out: list[dict[str, Any]] = []
    for part in chunks(list(ids)):
        where, params = db.in_ids("id", part)
        out += db.select(messages, MEMBER, f"{where} ORDER BY id{lock}", params)
    return out


def _touch(db: Driver, owners: Sequence[str], contacts: Sequence[Settled], at: datetime) -> None:
    """The customers' last contact times (`common.touch_contact`), and a fresh look at their
    plans from `at` (`common.look_again`: the plans stand, but their history moved). The rows
    are read first, in id order, locked on PostgreSQL: each transaction that writes several
    customers then takes them in one order."""
    latest = contacts_by_customer(contacts, at)
    lock = " FOR UPDATE" if db.postgres else ""
    current: dict[str, Any] = {}
    for part in chunks(sorted(set(owners) | latest.keys())):
        where, params = db.in_ids("id", part)
        for r in db.select(customers, ("id", "last_contact"), f"{where} ORDER BY id{lock}", params):
            current[r["id"]] = r["last_contact"]
    look_again(db, owners, at)
    updates = []
    for cid in sorted(latest):
        if cid not in current:
            continue
        merged = merge_contacts(current[cid], latest[cid])
        if merged is not None:
            updates.append((cid, merged))
    db.update(customers, "id", ("last_contact",), updates, single=True)
