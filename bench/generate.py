"""A seeded ledger for benchmarks: N customers across time zones and accounts, every role's
messages with redundancy (shared topics), mail recorded from a CRM, lifecycle events, 90 days
of history. Written with bulk inserts straight into the store's tables (the importers check
each record, which is not what is being measured here)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Table
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from cadence.ledger.db import make_engine, upgrade
from cadence.ledger.tables import customers, emails, events, messages

ZONES = [
    "America/New_York",
    "America/Los_Angeles",
    "Europe/Berlin",
    "Europe/London",
    "Asia/Tokyo",
    "Australia/Sydney",
    "UTC",
    "America/Sao_Paulo",
]
#: role, category, topic pool, transactional, weight
Kind = tuple[str, str, list[str | None], bool, int]
MIX: list[Kind] = [
    ("marketing", "announcement", ["feature:reports", "feature:sso", "webinar"], False, 3),
    ("product", "tip", ["feature:reports", "tips:dashboards", "tips:alerts"], False, 3),
    ("sales", "offer", ["pricing", "upgrade"], False, 2),
    ("success", "check-in", [None], False, 2),
    ("success", "onboarding", [None], False, 1),
    ("support", "ticket-reply", [None], True, 2),
    ("billing", "receipt", [None], True, 1),
]
WEIGHTS = [m[4] for m in MIX]
BATCH = 5000


def _message(
    rnd: random.Random, mid: str, cid: str, now: datetime, *, recorded: bool
) -> dict[str, Any]:
    role, category, topics, transactional, _ = rnd.choices(MIX, WEIGHTS)[0]
    if recorded:
        sent_at = now - timedelta(minutes=rnd.randint(60, 90 * 24 * 60))
        send_after, status, final = None, "recorded", True
    else:
        sent_at = None
        send_after = now + timedelta(minutes=rnd.randint(-120, 14 * 24 * 60))
        status, final = "scheduled", False
    return {
        "id": mid,
        "customer_id": cid,
        "kind": "recorded" if recorded else "submitted",
        "role": role,
        "category": category,
        "topic": rnd.choice(topics),
        "template": None,
        "data": {},
        "subject": f"{role} {category}",
        "body_text": "Hello from the benchmark.",
        "body_html": None,
        "sender_email": None,
        "sender_name": None,
        "human": recorded and role == "success" and rnd.random() < 0.5,
        "transactional": transactional,
        "priority": None,
        "send_after": send_after,
        "expires_at": None,
        "sent_at": sent_at,
        "playbook": None,
        "origin": None,
        "recipient": None,
        "created_at": now - timedelta(days=1),
        "digest": "bench",
        "status": status,
        "rule": None,
        "reason": "",
        "send_at": sent_at,
        "email_id": None,
        "details": {},
        "rules_version": None,
        "final": final,
        "decided_at": None,
        "in_flight": False,
        "cancelled_by": None,
    }


def rows(n: int, now: datetime, seed: int = 7) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(table, rows) batches for n customers."""
    rnd = random.Random(seed)
    cust: list[dict[str, Any]] = []
    msgs: list[dict[str, Any]] = []
    evs: list[dict[str, Any]] = []
    for i in range(n):
        cid = f"c{i:07d}"
        cust.append(
            {
                "id": cid,
                "email": f"{cid}@acme{i % 997}.test",
                "name": f"Customer {i}",
                "timezone": rnd.choice(ZONES),
                "account": f"acct{i // 8:06d}",
                "attributes": {
                    "plan": rnd.choice(["free", "pro", "pro", "enterprise"]),
                    "open_tickets": 1 if rnd.random() < 0.1 else 0,
                    "signup_at": (now - timedelta(days=rnd.randint(1, 400))).isoformat(),
                    "owner_email": "owner@vendor.test",
                },
                "attributes_at": None,
                "created_at": now - timedelta(days=rnd.randint(1, 400)),
                "updated_at": now,
                "digest": "bench",
                "unsubscribed_all": False,
                "unsubscribed_categories": ["announcement"] if rnd.random() < 0.05 else [],
                "hard_bounced": rnd.random() < 0.01,
                "soft_bounces": 0,
                "spam_reported": False,
                "last_contact": {},
                "dirty": False,
                "next_plan_at": None,
            }
        )
        for k in range(rnd.randint(1, 5)):
            msgs.append(_message(rnd, f"m{i:07d}-{k}", cid, now, recorded=False))
        for k in range(rnd.randint(0, 4)):
            msgs.append(_message(rnd, f"r{i:07d}-{k}", cid, now, recorded=True))
        if rnd.random() < 0.3:
            evs.append(
                {
                    "id": f"e{i:07d}",
                    "customer_id": cid,
                    "type": rnd.choice(
                        ["onboarding_completed", "ticket_resolved", "usage_dropped"]
                    ),
                    "at": now - timedelta(days=rnd.randint(1, 90)),
                    "data": {},
                    "attributes": {},
                    "received_at": now,
                    "digest": "bench",
                    "processed": True,
                }
            )
        if len(cust) >= BATCH:
            yield "customers", cust
            yield "messages", msgs
            yield "events", evs
            cust, msgs, evs = [], [], []
    if cust:
        yield "customers", cust
        yield "messages", msgs
        yield "events", evs


GENERATED_AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
#: the customer the preview figure looks at, given a year of history on top of the 90 days
#: everyone has (mail from every role, about twice a week)
PREVIEWED = "c0000001"


def year_of_history(now: datetime, seed: int = 11) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    out = []
    for k in range(104):
        row = _message(rnd, f"y{PREVIEWED}-{k:03d}", PREVIEWED, now, recorded=True)
        sent_at = now - timedelta(days=365) + timedelta(hours=k * 84 + rnd.randint(0, 48))
        out.append({**row, "sent_at": sent_at, "send_at": sent_at})
    return out


def add_year_of_history(url: str, now: datetime = GENERATED_AT) -> None:
    engine = make_engine(url)
    try:
        _bulk_insert(engine, messages, year_of_history(now))
    finally:
        engine.dispose()


def _bulk_insert(engine: Engine, table: Table, batch: list[dict[str, Any]]) -> None:
    """Rows into `table` as the store would write them (each column's own bind processor:
    UTC times, JSON), by the driver's executemany, or COPY on PostgreSQL. SQLAlchemy's
    per-row parameter handling was three quarters of a generation's time."""
    columns = list(table.columns)
    dialect = engine.dialect
    processors = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
    # a column the generator leaves out takes the model's default, as an insert through
    # the store would (the channel of a message, the flag of a planned touch)
    defaults = {
        c.name: c.default.arg for c in columns if isinstance(c.default, ScalarElementColumnDefault)
    }
    values = [
        tuple(
            p(row.get(c.name, defaults.get(c.name)))
            if p is not None
            else row.get(c.name, defaults.get(c.name))
            for c, p in zip(columns, processors, strict=True)
        )
        for row in batch
    ]
    names = ", ".join(c.name for c in columns)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if dialect.name == "postgresql":
            with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                for value in values:
                    copy.write_row(value)
        else:
            marks = ", ".join("?" for _ in columns)
            cursor.executemany(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", values)
        raw.commit()
    finally:
        raw.close()


def generate(url: str, n: int, now: datetime | None = None) -> datetime:
    """A fresh ledger of n customers at `url` (the schema migrated first); returns its `now`."""
    now = now or GENERATED_AT
    upgrade(url)
    engine = make_engine(url)
    tables = {"customers": customers, "messages": messages, "events": events, "emails": emails}
    try:
        for name, batch in rows(n, now):
            if batch:
                _bulk_insert(engine, tables[name], batch)
    finally:
        engine.dispose()
    if n > 1:
        add_year_of_history(url, now)
    if url.startswith("postgresql"):
        # the statistics a live database has (autovacuum gathers them within a minute or
        # so of a bulk load): without them PostgreSQL scans whole tables for a batch's
        # messages (15 ms a batch where the index takes 2). SQLite gathers none unless
        # asked, and cadence does not ask, so its ledger stays as generated
        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
        finally:
            engine.dispose()
    return now
