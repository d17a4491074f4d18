"""A scratch copy of the ledger: what `simulate` and `preview` run the daemon's own passes on.

The copy lives in memory (SQLite, the same schema), made of the whole ledger or of some
customers, then wound back to the moment the run starts:

- emails that had not gone (or failed) before that moment are gone: the passes plan them
  again;
- messages whose fate was decided at or after it are open again, except what a person
  cancelled; check-ins that playbooks created at or after it are gone (the passes create
  them again, as their events and sweeps come);
- events at or after it wait to be applied again; each customer's reachability is what
  the events before it made, and its last contact times what the ledger before it shows;
- with `replay` (until a time), messages recorded from other systems in between become
  candidates, as if cadence had been asked to send them.

Customer attributes stay as they are now (what an import set has no history); events at or
after the start merge theirs again when their time comes. Starting at the present, winding
back changes little: the run starts where the live ledger stands. Nothing here touches the
live ledger, which is only read.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table

from cadence.engine.events import apply_events
from cadence.ledger import convert
from cadence.ledger.attention import Settled, contacts_by_customer, merge_contacts
from cadence.ledger.columns import HISTORY
from cadence.ledger.db import IN_MEMORY
from cadence.ledger.driver import Driver, Row
from cadence.ledger.statements import chunks
from cadence.ledger.tables import customers, decisions, emails, events, messages, meta
from cadence.model import (
    Decision,
    Email,
    EmailStatus,
    Engagement,
    Message,
    Reachability,
    Status,
)

if TYPE_CHECKING:
    from cadence.ledger.ledger import Ledger

#: rows copied per statement
PAGE = 5000
#: what a person cancelled stays cancelled: a playbook's event cancels name the event
_BY_EVENT = "event %"


def scratch_store() -> Ledger:
    """An empty ledger in memory, at the newest schema: copied by SQLite's backup from an
    empty one made once a process (`create_all` compiles every table and index again, 15
    times the cost, and a daemon makes a copy for every preview it answers)."""
    from cadence.ledger.ledger import Ledger

    store = Ledger(IN_MEMORY)
    raw = store.engine.raw_connection()
    try:
        with _SCHEMA_LOCK:
            _schema().backup(raw.driver_connection)
    finally:
        raw.close()  # back to the engine's one connection, which the copy now lives in
    return store


#: the empty ledger scratch copies start from, and the process it was made in: a connection
#: is never used across a fork (SQLite's rule), so a forked child makes its own
_SCHEMA: tuple[int, Any] | None = None
_SCHEMA_LOCK = threading.Lock()


def _schema() -> Any:
    """The process's empty ledger, its DBAPI connection (made on first use)."""
    global _SCHEMA
    if _SCHEMA is None or _SCHEMA[0] != os.getpid():
        import sqlite3

        from sqlmodel import SQLModel

        from cadence.ledger.ledger import Ledger

        empty = Ledger(IN_MEMORY)
        SQLModel.metadata.create_all(empty.engine)
        target = sqlite3.connect(":memory:", check_same_thread=False)
        raw = empty.engine.raw_connection()
        try:
            source = raw.driver_connection
            assert source is not None  # an open connection of the engine's pool
            source.backup(target)
        finally:
            raw.close()
            empty.close()
        _SCHEMA = (os.getpid(), target)
    return _SCHEMA[1]


def copy_ledger(source: Ledger, target: Ledger, customer_ids: Sequence[str] | None) -> None:
    """Copy customers, messages, emails, events and settings from `source` into `target`:
    all of them, or those of `customer_ids`. Decision history is not copied: a run on the
    copy starts its own, from each open message's current decision."""
    with source.engine.connect() as read, target.engine.begin() as write:
        src, dst = Driver(read), Driver(write)
        for table, key, owner in (
            (customers, "id", "id"),
            (messages, "id", "customer_id"),
            (emails, "id", "customer_id"),
            (events, "id", "customer_id"),
            (meta, "key", None),
        ):
            names = [c.name for c in table.columns]
            for rows in _pages(src, table, names, key, owner, customer_ids):
                dst.insert(table, rows)


def _pages(
    db: Driver,
    table: Table,
    names: Sequence[str],
    key: str,
    owner: str | None,
    customer_ids: Sequence[str] | None,
) -> Any:
    if customer_ids is not None and owner is not None:
        for part in chunks(sorted(set(customer_ids))):
            where, params = db.in_ids(owner, part)
            yield db.select(table, names, where, params)
        return
    last: Any = None
    while True:
        where, params = ("1 = 1", []) if last is None else (f"{key} > ?", [last])
        rows = db.rows(
            table,
            names,
            f"SELECT {', '.join(names)} FROM {table.name} WHERE {where} "
            f"ORDER BY {key} LIMIT {PAGE}",
            params,
        )
        if not rows:
            return
        yield rows
        last = rows[-1][key]


def rewind(store: Ledger, start: datetime, *, replay_until: datetime | None = None) -> None:
    """Wind the (scratch) ledger back to `start` (see the module's docs)."""
    with store.engine.begin() as conn:
        db = Driver(conn)
        at = db.time(start)
        gone = (EmailStatus.SENT.value, EmailStatus.SENDING.value, EmailStatus.UNCONFIRMED.value)
        db.execute(
            "DELETE FROM emails WHERE NOT ("
            "status IN (?, ?, ?) AND coalesce(sent_at, send_at) < ? "
            "OR status = ? AND updated_at < ?)",
            [*gone, at, EmailStatus.FAILED.value, at],
        )
        db.execute(
            "DELETE FROM messages WHERE playbook IS NOT NULL AND created_at >= ? "
            "AND kind = 'submitted'",
            [at],
        )
        db.execute(
            "UPDATE messages SET status = ?, reason = ?, rule = NULL, send_at = NULL, "
            "email_id = NULL, details = '{}', rules_version = NULL, final = ?, "
            "in_flight = ?, sent_at = NULL, cancelled_by = NULL, decided_at = ? "
            "WHERE kind = 'submitted' AND ("
            "final = ? AND decided_at >= ? "
            "AND NOT (status = 'cancelled' AND cancelled_by NOT LIKE ?) "
            "OR in_flight = ? AND email_id NOT IN (SELECT id FROM emails))",
            [
                str(Status.SCHEDULED),
                "not planned yet",
                False,
                False,
                at,
                True,
                at,
                _BY_EVENT,
                True,
            ],
        )
        if replay_until is not None:
            db.execute(
                "UPDATE messages SET kind = 'submitted', send_after = sent_at, sent_at = NULL, "
                "subject = coalesce(subject, '(recorded ' || id || ')'), "
                "body_text = coalesce(body_text, ''), status = ?, reason = ?, send_at = NULL, "
                "final = ?, rules_version = NULL, decided_at = ? "
                # emails only: a call or a meeting is not something cadence could send
                "WHERE kind = 'recorded' AND channel = 'email' AND planned = ? "
                "AND status = 'recorded' AND sent_at >= ? AND sent_at < ?",
                [
                    str(Status.SCHEDULED),
                    "not planned yet",
                    False,
                    at,
                    False,
                    at,
                    db.time(replay_until),
                ],
            )
        db.execute("UPDATE events SET processed = ? WHERE at >= ?", [False, at])
        _reachability(db)
        _contacts(db, start)
        db.execute("UPDATE customers SET dirty = ?, next_plan_at = NULL", [True])
        _first_history(db)


def _reachability(db: Driver) -> None:
    """Each customer's reachability and engagement as the events applied so far made them."""
    applied: dict[str, list[Any]] = {}
    for r in db.select(events, [c.name for c in events.columns], "processed = ?", [True]):
        applied.setdefault(r["customer_id"], []).append(convert.event(r))
    names = [c.name for c in customers.columns]
    rows = db.select(customers, names, "1 = 1", [])
    updates = []
    for r in rows:
        before = convert.customer(r)
        start = replace(before, reach=Reachability(), engagement=Engagement())
        fresh = apply_events(start, applied.get(before.id, ()))
        updates.append(
            {
                "id": before.id,
                **convert.reachability_values(fresh.reach),
                **convert.engagement_values(fresh.engagement),
            }
        )
    db.update(customers, "id", updates)


def _contacts(db: Driver, start: datetime) -> None:
    """Each customer's last contact times, from what went before `start`."""
    went = [
        Settled(r["customer_id"], r["role"], r["human"], r["recipient"], r["sent_at"], r["channel"])
        for r in db.select(
            messages,
            ("customer_id", "role", "human", "recipient", "sent_at", "channel"),
            # what went or happened: not a booking, not one cancelled
            "sent_at IS NOT NULL AND sent_at < ? AND planned = ? AND status IN (?, ?) "
            "ORDER BY sent_at",
            [db.time(start), False, str(Status.SENT), str(Status.RECORDED)],
        )
    ]
    latest = contacts_by_customer(went)
    ids = [cid for (cid,) in db.fetch("SELECT id FROM customers", [])]
    db.update(
        customers,
        "id",
        [{"id": cid, "last_contact": merge_contacts({}, latest.get(cid, {})) or {}} for cid in ids],
    )


def _first_history(db: Driver) -> None:
    """Each open message's current decision as the first line of its history: what a run
    on the copy then changes is told after it (the decision a message went out under, if
    the run kept it as it was)."""
    names = ("id", "customer_id", "decided_at", "status", "send_at", "email_id", "rule")
    rows = db.select(
        messages,
        (*names, "reason", "details", "rules_version"),
        "final = ? AND rules_version IS NOT NULL",
        [False],
    )
    db.insert(
        decisions,
        [
            convert.history_row(
                message_id=r["id"],
                customer_id=r["customer_id"],
                decided_at=r["decided_at"],
                status=r["status"],
                send_at=r["send_at"],
                email_id=r["email_id"],
                rule=r["rule"],
                reason=r["reason"],
                details=r["details"] or {},
                rules_version=r["rules_version"],
            )
            for r in rows
        ],
    )


def settled_ids(store: Ledger) -> frozenset[str]:
    """The messages whose fate is settled: final, no pass looks at them again."""
    with store.engine.connect() as conn:
        db = Driver(conn)
        return frozenset(i for (i,) in db.fetch("SELECT id FROM messages WHERE final = ?", [True]))


def went_under(store: Ledger, ids: Sequence[str]) -> dict[str, Row]:
    """For messages sent on the copy: the last decision before the one that says `sent`,
    the plan each went out under (from the history the copy began with, then its own)."""
    out: dict[str, Row] = {}
    with store.engine.connect() as conn:
        db = Driver(conn)
        for part in chunks(sorted(set(ids))):
            where, params = db.in_ids("message_id", part)
            for r in db.select(
                decisions,
                ("id", *HISTORY),
                f"{where} AND status != ? ORDER BY id",
                [*params, str(Status.SENT)],
            ):
                out[r["message_id"]] = r
    return out


def outcomes(
    store: Ledger, start: datetime, customer_ids: Sequence[str] | None = None
) -> list[tuple[Message, Decision]]:
    """Every message (of these customers) with what became of it: for one sent on the copy
    (at or after `start`), the decision it went out under; else its current decision."""
    names = [c.name for c in messages.columns]
    with store.engine.connect() as conn:
        db = Driver(conn)
        if customer_ids is None:
            rows = db.select(messages, names, "1 = 1 ORDER BY customer_id, id", [])
        else:
            where, params = db.in_ids("customer_id", sorted(set(customer_ids)))
            rows = db.select(messages, names, f"{where} ORDER BY customer_id, id", params)
    went = [
        r["id"]
        for r in rows
        if r["status"] == Status.SENT and r["sent_at"] is not None and r["sent_at"] >= start
    ]
    under = went_under(store, went)
    out = []
    for r in rows:
        out.append((convert.message(r), convert.decision(under.get(r["id"], r))))
    return out


def sent_between(
    store: Ledger, start: datetime, end: datetime, customer_ids: Sequence[str] | None = None
) -> list[Email]:
    """The emails sent on the copy from `start` to `end` (included), in the order sent."""
    names = [c.name for c in emails.columns]
    with store.engine.connect() as conn:
        db = Driver(conn)
        where = "status = ? AND sent_at >= ? AND sent_at <= ?"
        params = [EmailStatus.SENT.value, db.time(start), db.time(end)]
        if customer_ids is not None:
            ids, more = db.in_ids("customer_id", sorted(set(customer_ids)))
            where, params = f"{where} AND {ids}", [*params, *more]
        rows = db.select(emails, names, f"{where} ORDER BY send_at, customer_id, id", params)
    return [convert.email(r) for r in rows]
