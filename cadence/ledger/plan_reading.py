"""Reading what the planner needs for a batch of customers, in a few queries a batch.

Through `Driver` (raw rows, converted once into the domain values; see there for why).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Table

from cadence.ledger import columns, convert
from cadence.ledger.driver import Driver, Row
from cadence.ledger.statements import chunks
from cadence.ledger.tables import customers, emails, messages
from cadence.model import (
    CustomerContext,
    Decision,
    EmailStatus,
    Message,
    MessageKind,
    Sent,
    Status,
)

T = TypeVar("T")

#: emails that went, or may have
IN_LEDGER = tuple(
    s.value
    for s in (EmailStatus.CLAIMED, EmailStatus.SENDING, EmailStatus.SENT, EmailStatus.UNCONFIRMED)
)

#: what `convert.customer` needs, and the contact times the limits count from
CUSTOMER = (*columns.CUSTOMER, "last_contact")
#: the current decision (`convert.decision`), which a new plan is compared with
CURRENT = columns.only(
    messages, "status", "reason", "send_at", "email_id", "rule", "details", "rules_version", "final"
)


def load_contexts(
    db: Driver,
    ids: Sequence[str],
    now: datetime,
    lookback: timedelta,
    *,
    account: bool = True,
    peers_planned: bool = False,
    open_messages: bool = True,
    playbook_runs: bool = True,
    pending_rows: dict[str, Row] | None = None,
) -> list[CustomerContext]:
    """The customers' contexts; with `pending_rows`, their open messages' rows are left
    there by id (what the writing side compares the new decisions with). Without
    `account`, no other customer's mail (see `with_accounts`); without `open_messages`, no
    open messages nor their decisions (a sweep reads neither: most of a context's
    reading); without `playbook_runs`, none (the planner never reads them: only a
    playbook's cooldown does)."""
    if not ids:
        return []
    since = now - lookback
    where, params = db.in_ids("id", ids)
    raw = db.fetch(f"SELECT {', '.join(CUSTOMER)} FROM customers WHERE {where}", params)
    read = _memoized(db, customers, CUSTOMER, raw, lambda r: (convert.customer(r), r))
    if not read:
        return []
    custs = [c for c, _ in read]
    contact = {c.id: r["last_contact"] for c, r in read}
    where, params = db.in_ids("customer_id", ids)
    open_rows = (
        _open_messages(
            db, f"{where} AND final = ? AND in_flight = ? ORDER BY id", [*params, False, False]
        )
        if open_messages
        else []
    )
    pending: dict[str, list[Message]] = defaultdict(list)
    previous: dict[str, dict[str, Any]] = defaultdict(dict)
    known: dict[str, Message] = {}
    for message, decision, current in open_rows:
        known[message.id] = message
        pending[message.customer_id].append(message)
        previous[message.customer_id][message.id] = decision
        if pending_rows is not None:
            pending_rows[message.id] = current
    history = _history(db, ids, since, known=known)
    runs = _playbook_runs(db, ids) if playbook_runs else {}
    out = [
        CustomerContext(
            customer=c,
            pending=tuple(pending[c.id]),
            history=tuple(history.get(c.id, ())),
            last_contact={
                k: datetime.fromisoformat(v) for k, v in (contact.get(c.id) or {}).items()
            },
            previous=previous[c.id],
            playbook_runs=runs.get(c.id, {}),
        )
        for c in custs
    ]
    return with_accounts(db, out, since, peers_planned=peers_planned) if account else out


def with_accounts(
    db: Driver,
    contexts: Sequence[CustomerContext],
    since: datetime,
    *,
    peers_planned: bool = False,
) -> list[CustomerContext]:
    """The contexts with the mail of their accounts' other customers (`account_history`):
    what those were sent, for customers planned with their account (`plan_account` places
    everyone's emails anew); with `peers_planned`, what is planned for them too, for a
    customer planned alone while the plans of the rest of its account stand."""
    accounts = sorted({c.customer.account for c in contexts if c.customer.account})
    if not accounts:
        return list(contexts)
    peers: dict[str, list[str]] = defaultdict(list)
    where, params = db.in_ids("account", accounts)
    for cid, acct in db.fetch(f"SELECT id, account FROM customers WHERE {where}", params):
        peers[acct].append(cid)
    known = {m.id: m for c in contexts for m in c.pending}
    # a peer read in this batch already has the mail it was sent in its own context (the
    # same statuses since the same time): read only the others. Not with `peers_planned`,
    # which wants their planned emails too
    read = {} if peers_planned else {c.customer.id: c.history for c in contexts}
    history: dict[str, Sequence[Sent]] = dict(read)
    history.update(
        _history(
            db,
            sorted({p for group in peers.values() for p in group} - read.keys()),
            since,
            known=known,
            planned=set() if peers_planned else None,
        )
    )
    out = []
    for c in contexts:
        others = [p for p in peers.get(c.customer.account or "", []) if p != c.customer.id]
        mail = tuple(s for o in others for s in history.get(o, ()))
        out.append(replace(c, account_history=mail) if mail else c)
    return out


def _playbook_runs(db: Driver, ids: Sequence[str]) -> dict[str, dict[str, datetime]]:
    """When each playbook last created a (not cancelled) message for each customer."""
    where, params = db.in_ids("customer_id", ids)
    read = db.reader("time")
    runs: dict[str, dict[str, datetime]] = defaultdict(dict)
    for cid, playbook, last in db.fetch(
        "SELECT customer_id, playbook, max(created_at) FROM messages "
        f"WHERE {where} AND playbook IS NOT NULL AND status != ? "
        "GROUP BY customer_id, playbook",
        [*params, Status.CANCELLED.value],
    ):
        runs[cid][playbook] = read(last) if read else last
    return runs


def _history(
    db: Driver,
    ids: Sequence[str],
    since: datetime,
    *,
    known: dict[str, Message],
    planned: set[str] | None = None,
) -> dict[str, list[Sent]]:
    """Sent (or in-flight) emails and recorded messages since `since`; with `planned`, the
    planned emails too, their ids added there. Each email counts at the time it went, else
    the time it is due. Members found in `known` (open messages read in this transaction)
    are not read again."""
    if not ids:
        return {}
    statuses = IN_LEDGER if planned is None else (*IN_LEDGER, EmailStatus.PLANNED.value)
    where, params = db.in_ids("customer_id", ids)
    raw = db.fetch(
        f"SELECT {', '.join(_SENT_EMAIL)} FROM emails WHERE {where} "
        f"AND status IN ({','.join('?' * len(statuses))}) AND coalesce(sent_at, send_at) >= ?",
        [*params, *statuses, db.time(since)],
    )
    rows = _memoized(db, emails, _SENT_EMAIL, raw, lambda row: row)
    members = dict(known)
    members.update(_settled_members(db, rows))
    member_ids = sorted({i for r in rows for i in r["members"]} - members.keys())
    for part in chunks(member_ids):
        where, params = db.in_ids("id", part)
        for message in read_messages(db, where, params):
            members[message.id] = message
    out: dict[str, list[Sent]] = defaultdict(list)
    for r in rows:
        at = r["sent_at"] or r["send_at"]
        group = tuple(members[i] for i in r["members"] if i in members)
        out[r["customer_id"]].append(Sent(r["id"], at, r["customer_id"], group))
        if planned is not None and r["status"] == EmailStatus.PLANNED:
            planned.add(r["id"])
    where, params = db.in_ids("customer_id", ids)
    for msg in read_messages(
        db,
        # a touch planned elsewhere counts at its time until it is cancelled
        f"{where} AND kind = ? AND status = ? AND sent_at >= ?",
        [*params, MessageKind.RECORDED.value, Status.RECORDED.value, db.time(since)],
    ):
        assert msg.sent_at is not None
        out[msg.customer_id].append(Sent(msg.id, msg.sent_at, msg.customer_id, (msg,)))
    for sents in out.values():
        sents.sort(key=lambda s: (s.at, s.id))
    return out


def read_messages(db: Driver, where: str, params: Sequence[Any]) -> list[Message]:
    """The messages a `WHERE` selects, as values."""
    raw = db.fetch(f"SELECT {', '.join(columns.MESSAGE)} FROM messages WHERE {where}", params)
    return _messages(db, raw)


def _messages(db: Driver, raw: Sequence[Sequence[Any]]) -> list[Message]:
    """Rows whose first columns are `columns.MESSAGE`, as messages (`_memoized`)."""
    n = len(columns.MESSAGE)
    return _memoized(db, messages, columns.MESSAGE, [r[:n] for r in raw], convert.message)


#: an email as a customer's history reads it
_SENT_EMAIL = columns.only(emails, "id", "customer_id", "status", "sent_at", "send_at", "members")


def _memoized(
    db: Driver,
    table: Table,
    names: tuple[str, ...],
    raw: Sequence[Sequence[Any]],
    make: Callable[[Row], T],
) -> list[T]:
    """Raw rows of `names` of `table` (the id first), each converted and made into a value
    by `make`. Where the driver keeps a memo (a ledger that stays small, read pass after
    pass), each row is converted once for as long as its stored values stay the same (one
    entry an id: the memo holds the newest); the values are shared, never changed."""
    memo = None if db.memo is None else db.memo.setdefault(table.name, {})
    if memo is None:
        return [make(r) for r in db.converted(table, names, raw)]
    out = []
    for r in raw:
        key = tuple(r)
        found = memo.get(key[0])
        if found is None or found[0] != key:
            found = memo[key[0]] = (key, make(db.converted(table, names, [key])[0]))
        out.append(found[1])
    return out


#: where `sent_at` is in a row of `columns.MESSAGE`
_SENT_AT = columns.MESSAGE.index("sent_at")


def _settled_members(db: Driver, emails_rows: Sequence[Row]) -> dict[str, Message]:
    """The members of sent emails that the driver's memo holds as settled (their `sent_at`
    set): a message settled as sent in an email is never written again, so the memo's value
    is what a read would give, and the read is saved. None without a memo."""
    memo = None if db.memo is None else db.memo.get(messages.name)
    if not memo:
        return {}
    out: dict[str, Message] = {}
    for r in emails_rows:
        if r["status"] != EmailStatus.SENT:
            continue
        for i in r["members"]:
            found = memo.get(i)
            if found is not None and found[0][_SENT_AT] is not None:
                out[i] = found[1]
    return out


#: an open message as a plan reads it: the message, its current decision, and the row of that
#: decision (what the writing side compares a new one with)
OpenMessage = tuple[Message, Decision, Row]


def _open_messages(db: Driver, where: str, params: Sequence[Any]) -> list[OpenMessage]:
    names = (*columns.MESSAGE, *CURRENT)
    raw = db.fetch(f"SELECT {', '.join(names)} FROM messages WHERE {where}", params)
    n = len(columns.MESSAGE)
    # the decision is converted every time: it changes with most plans
    current = db.converted(messages, CURRENT, [r[n:] for r in raw])
    out = []
    for message, row in zip(_messages(db, raw), current, strict=True):
        row["id"] = message.id
        out.append((message, convert.decision(row), row))
    return out


@dataclass(frozen=True, slots=True)
class Unit:
    """Customers planned together (`plan_account`), or one planned alone; `peers_planned`:
    alone, the plans of the rest of its account standing."""

    ids: tuple[str, ...]
    peers_planned: bool = False


def units(db: Driver, ids: Sequence[str], *, accounts: bool) -> list[Unit]:
    """The customers to plan, in the groups they are planned in. With `accounts` (a limit
    counts an account's mail), every customer of an account where something changed (one
    of them is marked dirty) is planned with the rest of it, whichever of them asked: its
    plans are made anew in one order. A customer whose account did not change is planned
    alone, the others' plans standing (a look again after its email went, its next moment):
    they were made together with it, and stand as they were. Sorted: a defined order."""
    if not accounts:
        return [Unit((i,)) for i in sorted(set(ids))]
    # the customers asked for and every customer of their accounts, in one statement
    where, params = db.in_ids("id", list(ids))
    rows = db.fetch(
        f"SELECT id, account, dirty FROM customers WHERE {where} OR account IN "
        f"(SELECT account FROM customers WHERE {where} AND account IS NOT NULL)",
        [*params, *params],
    )
    wanted = set(ids)
    asked = [(cid, account) for cid, account, _ in rows if cid in wanted]
    out = [Unit((cid,)) for cid, account in asked if account is None]
    names = sorted({account for _, account in asked if account is not None})
    groups: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    for cid, account, dirty in rows:
        if account is not None:
            groups[account].append((cid, bool(dirty)))
    for name in names:
        members = sorted(groups[name])
        if any(dirty for _, dirty in members):
            out.append(Unit(tuple(cid for cid, _ in members)))
        else:
            out += [Unit((cid,), peers_planned=True) for cid, _ in members if cid in wanted]
    return sorted(out, key=lambda u: u.ids)


def current_decisions(db: Driver, ids: Sequence[str]) -> dict[str, Row]:
    """The decided messages' current rows (what a new decision is compared with), by id."""
    out: dict[str, Row] = {}
    for part in chunks(list(ids)):
        where, params = db.in_ids("id", part)
        for r in db.select(messages, ("id", "customer_id", *CURRENT), where, params):
            out[r["id"]] = r
    return out
