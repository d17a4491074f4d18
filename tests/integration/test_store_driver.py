"""The driver-level path of re-planning (`cadence/ledger/driver.py`: COPY and `unnest` updates
on PostgreSQL, the driver's `executemany` on SQLite) against SQLAlchemy's own writes and reads,
on both databases: a row written either way is stored alike (the text SQLite keeps, the values
and the JSON text PostgreSQL keeps) and read back as the same values of the same types."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Connection, Table, bindparam, insert, select, update

from cadence.ledger.driver import FEW, Driver, Encoded, json_loads
from cadence.ledger.ledger import Ledger
from cadence.ledger.tables import customers, decisions, emails, messages
from cadence.model import Customer, Message

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
KOLKATA = timezone(timedelta(hours=5, minutes=30))
#: JSON as the planner writes it, and what else a column may hold
DOCS: list[Any] = [
    {},
    {"counted": ["e-1", "r-2"], "won_by": None, "next_allowed": NOW.isoformat(), "event": None},
    {"text": 'quotes " and \\ and ünïcødé ✓ 😀', "n": 1.5, "deep": {"l": [1, True, None]}},
    [],
    None,
]


def _stored(conn: Connection, table: Table, key: str, value: Any) -> Any:
    """A row as the database keeps it, without SQLAlchemy's types: SQLite's own values (its
    time text, 0/1), PostgreSQL's values as text (a JSON column's very text)."""
    if conn.dialect.name == "postgresql":
        names = [c.name for c in table.c]
        sql = (
            f"SELECT {', '.join(f'{n}::text' for n in names)} FROM {table.name} WHERE {key} = %(v)s"
        )
        return dict(zip(names, conn.exec_driver_sql(sql, {"v": value}).one(), strict=True))
    row = conn.exec_driver_sql(f"SELECT * FROM {table.name} WHERE {key} = ?", (value,)).one()
    return dict(zip(row._fields, row, strict=True))


def _read(conn: Connection, table: Table, key: str, value: Any) -> dict[str, Any]:
    """A row as SQLAlchemy reads it, each value with its type."""
    row = conn.execute(select(table).where(table.c[key] == value)).mappings().one()
    return {k: (type(v), v) for k, v in row.items()}


def _without(row: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in keys}


def _email(i: int, doc_members: list[str]) -> dict[str, Any]:
    return {
        "id": f"e-{i}",
        "customer_id": "c-1",
        "send_at": [NOW, NOW.astimezone(KOLKATA), NOW + timedelta(microseconds=7)][i % 3],
        "status": "planned",
        "members": doc_members,
        "role": "success",
        "category": None if i % 2 else "tip",
        "transactional": bool(i % 2),
        "merge_rule": None,
        "template": "t",
        "to_owner": not i % 2,
        "lease_owner": None,
        "lease_until": None,
        "attempts": i,
        "provider_id": None,
        "error": None,
        "sent_at": None if i % 2 else NOW - timedelta(days=400, seconds=1),
        "created_at": NOW,
        "updated_at": NOW,
        "rules_version": "v1",
    }


def _decision(i: int, details: Any) -> dict[str, Any]:
    return {
        "message_id": f"m-{i}",
        "customer_id": "c-1",
        "decided_at": NOW.astimezone(KOLKATA),
        "status": "scheduled",
        "send_at": None if i % 2 else NOW + timedelta(hours=i, microseconds=123456),
        "email_id": f"e-{i}",
        "rule": None,
        "reason": "goes at 16:00 — «local»",
        "details": details,
        "rules_version": None,
    }


def _seed(store: Ledger) -> None:
    store.ingest.upsert_customers(
        [(Customer("c-1", "c1@acme.test", "C1", "UTC", "acme"), "d")], now=NOW
    )


@pytest.mark.parametrize("single", [False, True], ids=["executemany", "one-statement"])
@pytest.mark.parametrize("table", ["emails", "decisions"])
@pytest.mark.parametrize("many", [False, True], ids=["few", "many"])
def test_rows_inserted_by_the_driver_are_stored_as_sqlalchemy_stores_them(
    store: Ledger, table: str, single: bool, many: bool
) -> None:
    """A few rows and many (on PostgreSQL arrays in one statement, and `COPY`)."""
    _seed(store)
    if table == "emails":
        rows = [_email(i, m) for i, m in enumerate([[], ["m-1"], ["m-1", "m-2"], []])]
        target, key = emails, "id"
    else:
        rows = [_decision(i, doc) for i, doc in enumerate(DOCS)]
        target, key = decisions, "message_id"
    if many:
        rows = [{**r, key: f"{r[key]}-{k}"} for k in range(FEW // len(rows) + 1) for r in rows]
        assert len(rows) > FEW
    # the same values but the key: each row once through SQLAlchemy, once by the driver
    pairs = [(a, {**a, key: f"{a[key]}-d"}) for a in rows]
    with store.engine.begin() as conn:
        conn.execute(insert(target), [a for a, _ in pairs])
        Driver(conn).insert(target, [b for _, b in pairs], single=single)
    with store.engine.connect() as conn:
        for a, b in pairs:
            ours, theirs = _stored(conn, target, key, b[key]), _stored(conn, target, key, a[key])
            assert _without(ours, "id", key) == _without(theirs, "id", key)
            assert _without(_read(conn, target, key, b[key]), "id", key) == _without(
                _read(conn, target, key, a[key]), "id", key
            )


@pytest.mark.parametrize("single", [False, True], ids=["executemany", "one-statement"])
@pytest.mark.parametrize("fixed", [0, 3], ids=["per-row", "fixed-columns"])
def test_rows_updated_by_the_driver_are_stored_as_sqlalchemy_stores_them(
    store: Ledger, single: bool, fixed: int
) -> None:
    """Each column per row, or (`fixed`) the last few the same in every row, as the
    dispatcher writes a chunk's settled members."""
    _seed(store)
    store.ingest.add_messages(
        [
            (Message(f"m-{i}{s}", "c-1", "success", send_after=NOW), "d")
            for i in range(len(DOCS))
            for s in "ab"
        ],
        now=NOW,
    )
    columns = ["status", "rule", "reason", "send_at", "email_id", "details", "final", "decided_at"]
    same = ["ünïcødé ✓", True, NOW.astimezone(KOLKATA)]  # reason, final, decided_at
    values = [
        [
            "deferred",
            None if i % 2 else "r",
            same[0] if fixed else f"ünïcødé ✓ {i}",
            [NOW.astimezone(KOLKATA), None][i % 2],
            f"e-{i}",
            doc,
            same[1] if fixed else bool(i % 2),
            same[2] if fixed else NOW,
        ]
        for i, doc in enumerate(DOCS)
    ]
    with store.engine.begin() as conn:
        conn.execute(
            update(messages)
            .where(messages.c.id == bindparam("m_id"))
            .values({c: bindparam(f"m_{c}") for c in columns}),
            [
                {"m_id": f"m-{i}a", **{f"m_{c}": v for c, v in zip(columns, row, strict=True)}}
                for i, row in enumerate(values)
            ],
        )
        db = Driver(conn)
        # a value already encoded goes in as it is (every other row here)
        encoded = [
            [*row[:5], Encoded(json.dumps(row[5])) if i % 2 else row[5], *row[6:]]
            for i, row in enumerate(values)
        ]
        # the `fixed` columns moved to the end: their values are the same in every row
        order = [c for c in columns if c not in FIXED] + [c for c in columns if c in FIXED]
        rows = [dict(zip(columns, row, strict=True)) for row in encoded]
        per_row = order[: len(order) - fixed] if fixed else columns
        db.update(
            messages,
            "id",
            [{"id": f"m-{i}b", **{c: r[c] for c in per_row}} for i, r in enumerate(rows)],
            fixed=dict(zip(FIXED, same, strict=True)) if fixed else None,
            single=single,
        )
        db.update(
            customers,
            "id",
            [{"id": "c-1", "dirty": False, "next_plan_at": NOW + timedelta(hours=1)}],
            single=single,
        )
    with store.engine.connect() as conn:
        for i in range(len(DOCS)):
            ours, theirs = (
                _stored(conn, messages, "id", f"m-{i}b"),
                _stored(conn, messages, "id", f"m-{i}a"),
            )
            assert _without(ours, "id") == _without(theirs, "id")
            assert _without(_read(conn, messages, "id", f"m-{i}b"), "id") == _without(
                _read(conn, messages, "id", f"m-{i}a"), "id"
            )
        back = _read(conn, customers, "id", "c-1")
        assert back["dirty"] == (bool, False)
        assert back["next_plan_at"] == (datetime, NOW + timedelta(hours=1))
        assert back["next_plan_at"][1].tzinfo is UTC


FIXED = ("reason", "final", "decided_at")


def test_rows_read_by_the_driver_are_what_sqlalchemy_reads(store: Ledger) -> None:
    _seed(store)
    store.ingest.add_messages(
        [
            (
                Message(
                    "m-1",
                    "c-1",
                    "success",
                    data={"k": ["ü", 1]},
                    send_after=NOW.astimezone(KOLKATA),
                    human=True,
                ),
                "d",
            ),
            (Message("m-2", "c-1", "sales", send_after=NOW + timedelta(microseconds=1)), "d"),
        ],
        now=NOW,
    )
    columns = [c.name for c in messages.c]
    with store.engine.connect() as conn:
        theirs = [
            dict(r) for r in conn.execute(select(messages).order_by(messages.c.id)).mappings()
        ]
        ours = Driver(conn).select(messages, columns, "customer_id = ? ORDER BY id", ["c-1"])
    assert [{k: (type(v), v) for k, v in r.items()} for r in ours] == [
        {k: (type(v), v) for k, v in r.items()} for r in theirs
    ]
    times = [r["send_after"] for r in ours]
    assert all(t.tzinfo is UTC for t in times)


def test_the_driver_refuses_naive_times(store: Ledger) -> None:
    _seed(store)
    with store.engine.begin() as conn, pytest.raises(ValueError, match="naive datetime"):
        Driver(conn).update(customers, "id", [{"id": "c-1", "next_plan_at": datetime(2026, 1, 1)}])


@pytest.mark.parametrize(
    "text", ["{}", "[]", "null", '"x"', '{"a": [1, 2.5, "ü"]}', ' {"a": 1} ', b'{"b": null}']
)
def test_json_loads_is_json_loads(text: str | bytes) -> None:
    assert json_loads(text) == json.loads(text)


@pytest.mark.parametrize("text", ["", "{", '{"a": 1}{', "nan!"])
def test_json_loads_raises_as_json_loads_does(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    with pytest.raises(json.JSONDecodeError):
        json_loads(text)
