"""The dispatcher's writes around a hand-over, chunk by chunk: `claimed -> sending` before it,
`sending -> sent` (with the members' decisions, their history and the customers' contact
times) after it.

Through `Driver`, not SQLAlchemy: these run for every chunk, on the thread that also feeds
the sending threads, so their cost per row is what the dispatcher's pace is made of. `settle` is the
one writer of an email's fate onto its messages, for the dispatcher and for everything else
that settles an email (a failure, a lease run out, a held render, an operator).

A statement per step, whatever the chunk's size: on PostgreSQL each is a round trip, and on
SQLite each statement, and each row read, gives up the GIL the sending threads take (see
`driver._parts`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from cadence.ledger import convert
from cadence.ledger.attention import Settled, revise
from cadence.ledger.driver import Driver, Row
from cadence.ledger.statements import chunks
from cadence.ledger.tables import decisions, emails, messages
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
    settled `sent` (`settle`, which keeps the customers' contact times)."""
    if not sent:
        return
    rows = db.update(
        emails,
        "id",
        [{"id": i, "provider_id": provider} for i, provider in sent],
        fixed={
            "status": EmailStatus.SENT.value,
            "sent_at": at,
            "updated_at": at,
            "lease_owner": None,
        },
        single=True,
        returning=_OWNERS,
    )
    ids = [i for i, _ in sent]
    settle(db, ids, Status.SENT, lambda email_id: f"sent in {email_id}", at, sent_at=at, read=rows)


#: what `settle` reads of an email: whose it is, and its members
_OWNERS = ("id", "customer_id", "members")


def settle(
    db: Driver,
    email_ids: Sequence[str],
    status: Status,
    reason: Callable[[str], str],
    at: datetime,
    *,
    sent_at: datetime | None = None,
    read: Sequence[Row] | None = None,
) -> None:
    """The members of these emails take the emails' fate at `at` (`sent`, `failed`,
    `unconfirmed`, `held`), each with its reason and a line of decision history; their
    customers' plans are looked at again from `at` (they stand, but their history moved),
    and given `sent_at` (they went then), their contact times kept. The one writer of this
    change, whoever settles an email; `read`: the emails' `_OWNERS` columns, where the caller
    has them already."""
    email_of: dict[str, str] = {}
    owners: set[str] = set()
    for r in read if read is not None else _owners(db, email_ids):
        owners.add(r["customer_id"])
        email_of.update({m: r["id"] for m in r["members"]})
    # members, then customers, each in id order: the order every writer of both takes them
    members = _members(db, sorted(email_of))
    if not members:
        revise(db, owners, at)
        return
    reasons = {m["id"]: reason(email_of[m["id"]]) for m in members}
    fixed: dict[str, Any] = {
        "status": str(status),
        "final": True,
        "in_flight": False,
        "decided_at": at,
    }
    if sent_at is not None:
        fixed["sent_at"] = sent_at
    db.update(
        messages,
        "id",
        [{"id": m["id"], "reason": reasons[m["id"]]} for m in members],
        fixed=fixed,
        single=True,
    )
    db.insert(
        decisions,
        [
            convert.history_row(
                message_id=m["id"],
                customer_id=m["customer_id"],
                decided_at=at,
                status=status,
                send_at=m["send_at"],
                email_id=email_of[m["id"]],
                rule=m["rule"],
                reason=reasons[m["id"]],
                details=m["details"] or {},
                rules_version=m["rules_version"],
            )
            for m in members
        ],
        single=True,
    )
    if sent_at is None:  # nothing went: no contact to keep
        revise(db, owners, at)
        return
    # email by email in the order given (a customer's new contact keys go into its
    # last_contact in that order, as when its emails were recorded one chunk each)
    rank = {email_id: i for i, email_id in enumerate(email_ids)}
    went = [
        Settled(m["customer_id"], m["role"], m["human"], m["recipient"], sent_at)
        for m in sorted(members, key=lambda m: (rank[email_of[m["id"]]], m["id"]))
    ]
    revise(db, owners, at, went, sent_at)


def _owners(db: Driver, email_ids: Sequence[str]) -> list[Row]:
    out: list[Row] = []
    for part in chunks(list(email_ids)):
        where, params = db.in_ids("id", part)
        out += db.select(emails, _OWNERS, where, params)
    return out


def _members(db: Driver, ids: Sequence[str]) -> list[dict[str, Any]]:
    """The members' rows, in id order; on PostgreSQL locked in that order, as a claim locks
    messages (two transactions taking overlapping sets then cannot deadlock)."""
    lock = " FOR UPDATE" if db.postgres else ""
    out: list[dict[str, Any]] = []
    for part in chunks(list(ids)):
        where, params = db.in_ids("id", part)
        out += db.select(messages, MEMBER, f"{where} ORDER BY id{lock}", params)
    return out
