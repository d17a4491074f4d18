"""The dispatcher's driver-level writes (`cadence/ledger/dispatch_writing.py`, through
`mark_sent_many` and `mark_sent_and_sending`): emails recorded one by one and as one chunk
store the same rows, and the driver-level claim reads what SQLAlchemy reads of the same rows,
on SQLite and PostgreSQL.

Two mirror-image ledgers ("qa-..." and "qb-...": the same customers, messages, plans) in one
database: each sent one way, every row they touch must be stored alike, the prefix aside."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, select, update

from bench.completion import TimedCursor
from cadence.ledger.attention import Settled, revise
from cadence.ledger.driver import Driver
from cadence.ledger.ledger import Ledger
from cadence.ledger.tables import customers, decisions, emails, messages
from cadence.model import Customer, Decision, Email, Message, Plan, Sender, Status
from tests.support.ledger import save_plans

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
M = timedelta(minutes=1)
LEASE = 5 * M


def _ledger(store: Ledger, p: str) -> list[str]:
    """Customers whose emails settle every way a contact time can: a digest of two roles,
    a person's message, an internal alert (no contact), a customer with contact times
    already, one whose next plan is earlier than now (kept), one with none."""
    store.ingest.upsert_customers(
        [
            (Customer(f"{p}c-{i}", f"{p}{i}@x.test", f"C{i} ü", "UTC", None, {}), "d")
            for i in range(4)
        ],
        now=NOW,
    )
    msgs = [
        Message(f"{p}m-1", f"{p}c-0", "success", subject="s", send_after=NOW - M),
        Message(f"{p}m-2", f"{p}c-0", "product", subject="s", send_after=NOW - M),
        Message(
            f"{p}m-3",
            f"{p}c-1",
            "sales",
            subject="s",
            human=True,
            sender=Sender("rep@v.test", "Rep"),
            send_after=NOW - M,
        ),
        Message(f"{p}m-4", f"{p}c-2", "success", subject="s", to="owner", send_after=NOW - M),
        Message(f"{p}m-5", f"{p}c-3", "billing", subject="r", transactional=True),
    ]
    store.ingest.add_messages([(m, "d") for m in msgs], now=NOW)
    plan = {
        f"{p}c-0": [(f"{p}e-0", (f"{p}m-1", f"{p}m-2"))],
        f"{p}c-1": [(f"{p}e-1", (f"{p}m-3",))],
        f"{p}c-2": [(f"{p}e-2", (f"{p}m-4",))],
        f"{p}c-3": [(f"{p}e-3", (f"{p}m-5",))],
    }
    plans = []
    for cid, mails in plan.items():
        placed = tuple(Email(e, cid, NOW, ms, "success", None, False) for e, ms in mails)
        decided = tuple(
            Decision(m, Status.SCHEDULED, "r", NOW, e, counted=("x",), won_by=None)
            for e, ms in mails
            for m in ms
        )
        plans.append(Plan(cid, NOW - M, placed, decided, NOW + timedelta(hours=2)))
    save_plans(store, plans, "v1")
    with store.engine.begin() as conn:
        # contact times already kept, and a next plan due before the send
        conn.execute(
            update(customers)
            .where(customers.c.id == f"{p}c-0")
            .values(last_contact={"any": (NOW - 2 * M).isoformat(), "role:zz": "2020-01-01"})
        )
        conn.execute(
            update(customers).where(customers.c.id == f"{p}c-1").values(next_plan_at=NOW - M)
        )
    return [e for mails in plan.values() for e, _ in mails]


#: set from the wall clock as the two ledgers are made (not by dispatching)
WALL_CLOCK = {("created_at", "customers"), ("updated_at", "customers"), ("created_at", "messages")}


def _stored(conn: Connection, table: Table, key: str, prefix: str) -> list[dict[str, Any]]:
    """The rows whose `key` starts with `prefix`, as the database keeps them (PostgreSQL's
    as text), the prefix taken out of every value and the table's own ids left out."""
    names = [
        c.name
        for c in table.c
        if (c.name != "id" or key == "id") and (c.name, table.name) not in WALL_CLOCK
    ]
    if conn.dialect.name == "postgresql":
        cols = ", ".join(f"{n}::text" for n in names)
        sql = f"SELECT {cols} FROM {table.name} WHERE {key} LIKE %(p)s ORDER BY {key}"
    else:
        sql = f"SELECT {', '.join(names)} FROM {table.name} WHERE {key} LIKE :p ORDER BY {key}"
    rows = conn.exec_driver_sql(sql, {"p": f"{prefix}%"}).all()
    return [
        {
            n: v.replace(prefix, "*") if isinstance(v, str) else v
            for n, v in zip(names, r, strict=True)
        }
        for r in rows
    ]


def _everything(store: Ledger, prefix: str) -> dict[str, Any]:
    with store.engine.connect() as conn:
        return {
            t.name: _stored(conn, t, key, prefix)
            for t, key in (
                (customers, "id"),
                (messages, "id"),
                (emails, "id"),
                (decisions, "message_id"),
            )
        }


def test_sent_one_by_one_is_stored_as_sent_in_one_chunk(store: Ledger) -> None:
    a, b = _ledger(store, "qa-"), _ledger(store, "qb-")
    assert _everything(store, "qa-") == _everything(store, "qb-")  # mirror images
    store.sending.claim_due(NOW, "d", LEASE, 100)
    assert store.sending.mark_sending_many(a + b, "d", NOW) == set(a + b)
    at = NOW + M
    for email_id in a:  # one email a transaction
        store.sending.mark_sent_many([(email_id, f"prov-{email_id[3:]}")], at)
    store.sending.mark_sent_many([(e, f"prov-{e[3:]}") for e in b], at)  # one write for all
    ours, theirs = _everything(store, "qb-"), _everything(store, "qa-")
    assert ours == theirs
    assert {r["status"] for r in ours["emails"]} == {"sent"}
    contact = {r["id"]: r["last_contact"] for r in ours["customers"]}
    assert "human" in contact["*c-1"] and "role:product" in contact["*c-0"]
    assert contact["*c-2"] in ({}, "{}")  # an internal alert reached no customer


def test_one_write_records_a_chunk_and_marks_the_next_sending(store: Ledger) -> None:
    ids = _ledger(store, "qa-")
    assert sorted(c.email.id for c in store.sending.claim_due(NOW, "d", LEASE, 100)) == sorted(ids)
    first, rest = ids[:2], ids[2:]
    assert store.sending.mark_sending_many(first, "d", NOW) == set(first)
    # another daemon's claim is not ours; nor is an email already sending
    assert store.sending.mark_sent_and_sending([], NOW, [*rest, first[0]], "other") == set()
    assert store.sending.mark_sent_and_sending([], NOW, [first[0]], "d") == set()
    # the lease is checked at the time given: run out, the chunk is not ours; the sent
    # emails are recorded all the same
    late = NOW + LEASE + M
    assert store.sending.mark_sent_and_sending([(first[0], "p")], late, rest, "d") == set()
    assert store.sending.mark_sent_and_sending([(first[1], "p")], NOW + M, rest, "d") == set(rest)
    status = {e.id: s for c in range(4) for e, s in store.reads.emails_of(f"qa-c-{c}")}
    assert status == {first[0]: "sent", first[1]: "sent", rest[0]: "sending", rest[1]: "sending"}
    decided = {m.id: d for c in range(4) for m, d in store.reads.messages_of(f"qa-c-{c}")}
    assert decided["qa-m-1"].status is Status.SENT and decided["qa-m-1"].final
    assert decided["qa-m-5"].status is Status.SCHEDULED


def test_a_claim_reads_what_sqlalchemy_reads(store: Ledger) -> None:
    ids = _ledger(store, "qa-")
    claimed = {c.email.id: c for c in store.sending.claim_due(NOW, "d", LEASE, 100)}
    assert sorted(claimed) == sorted(ids)
    with store.engine.connect() as conn:
        rows = {r["id"]: r for r in conn.execute(select(emails)).mappings()}
    for email_id, item in claimed.items():
        assert item.customer == store.reads.customer(item.email.customer_id)
        mine = {m.id: m for m, _ in store.reads.messages_of(item.email.customer_id)}
        assert item.members == tuple(mine[m] for m in item.email.members)
        assert item.email.send_at == rows[email_id]["send_at"] and item.email.send_at.tzinfo is UTC
        assert item.attempts == rows[email_id]["attempts"] == 0
        assert rows[email_id]["status"] == "claimed" and rows[email_id]["lease_owner"] == "d"
        assert rows[email_id]["lease_until"] == NOW + LEASE
    (human,) = claimed["qa-e-1"].members
    assert human.human is True and human.sender == Sender("rep@v.test", "Rep")
    assert claimed["qa-e-0"].email.members == ("qa-m-1", "qa-m-2")


def test_revise_looks_again_and_keeps_contacts_in_one_read_and_one_write(store: Ledger) -> None:
    """`revise`, the one writer of a customer's look again and of its contact times: a look
    moves `next_plan_at` up to its time, never later; contacts merge in, an internal alert
    adds none; a customer in both gets both; one read and one write for all of them."""
    store.ingest.upsert_customers(
        [(Customer(f"r-{i}", f"r{i}@x.test", "R", "UTC", None, {}), "d") for i in range(5)],
        now=NOW,
    )
    earlier, later = NOW - 10 * M, NOW + 10 * M
    with store.engine.begin() as conn:
        conn.execute(update(customers).values(next_plan_at=later))
        conn.execute(update(customers).where(customers.c.id == "r-1").values(next_plan_at=None))
        conn.execute(update(customers).where(customers.c.id == "r-2").values(next_plan_at=earlier))
    went = [
        Settled("r-0", "success", False, None, None),
        Settled("r-3", "sales", True, None, None),
        Settled("r-4", "success", False, "owner", None),  # an alert to the account owner
    ]
    statements: dict[str, list[float]] = defaultdict(list)
    with store.engine.begin() as conn:
        db = Driver(conn)
        db._cursor = TimedCursor(db._cursor, statements)
        revise(db, ["r-0", "r-1", "r-2"], NOW, went, NOW - M)
    assert sum(len(times) for times in statements.values()) == 2, statements
    with store.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(customers))}
    assert rows["r-0"].next_plan_at == NOW  # was later: looked at now
    assert rows["r-1"].next_plan_at == NOW  # had none
    assert rows["r-2"].next_plan_at == earlier  # an earlier look stands
    assert rows["r-3"].next_plan_at == later and rows["r-4"].next_plan_at == later  # not asked
    at = (NOW - M).isoformat()
    assert rows["r-0"].last_contact == {"any": at, "role:success": at, "channel:email": at}
    assert rows["r-3"].last_contact == {
        "any": at,
        "human": at,
        "role:sales": at,
        "role:sales:human": at,
        "channel:email": at,
    }
    assert rows["r-1"].last_contact == {} and rows["r-4"].last_contact == {}


def test_an_update_returns_the_rows_it_changed(store: Ledger) -> None:
    _ledger(store, "qa-")
    with store.engine.begin() as conn:
        got = Driver(conn).update(
            emails,
            "id",
            [{"id": "qa-e-0", "provider_id": "p0"}, {"id": "qa-e-1", "provider_id": "p1"}],
            fixed={"updated_at": NOW + M},
            single=True,
            returning=("id", "customer_id", "members", "updated_at"),
        )
    later = NOW + M
    assert sorted(got, key=lambda r: r["id"]) == [
        {
            "id": "qa-e-0",
            "customer_id": "qa-c-0",
            "members": ["qa-m-1", "qa-m-2"],
            "updated_at": later,
        },
        {"id": "qa-e-1", "customer_id": "qa-c-1", "members": ["qa-m-3"], "updated_at": later},
    ]
