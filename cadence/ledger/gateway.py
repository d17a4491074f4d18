"""`Store`: the one object that speaks SQL. Each method is one transaction.

Customers and messages in, digests out, live here; events and cancellations
(`ingest_ops`), planning, dispatch and reading in their own modules, mixed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from cadence.ledger import convert
from cadence.ledger.common import chunks, mark_dirty, touch_contacts
from cadence.ledger.db import make_engine
from cadence.ledger.dispatch_ops import Claimed, DispatchOps
from cadence.ledger.driver import Driver
from cadence.ledger.ingest_ops import IngestOps
from cadence.ledger.planning_ops import PlanningOps
from cadence.ledger.reading_ops import DecisionRecord, ReadingOps, SimulationInput
from cadence.ledger.report_queries import ReportQueries
from cadence.ledger.tables import customers, events, messages
from cadence.model import Customer, Message, MessageKind

__all__ = ["Claimed", "DecisionRecord", "SimulationInput", "Store"]


class Store(IngestOps, PlanningOps, DispatchOps, ReadingOps, ReportQueries):
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_postgres = url.startswith("postgresql")

    def close(self) -> None:
        self.engine.dispose()

    # -- ingestion --------------------------------------------------------------------------

    def _digests(self, table: Any, ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        with self.engine.connect() as conn:
            for part in chunks(list(ids)):
                rows = conn.execute(select(table.c.id, table.c.digest).where(table.c.id.in_(part)))
                out.update({r.id: r.digest for r in rows})
        return out

    def customer_digests(self, ids: Sequence[str]) -> dict[str, str]:
        return self._digests(customers, ids)

    def message_digests(self, ids: Sequence[str]) -> dict[str, str]:
        return self._digests(messages, ids)

    def event_digests(self, ids: Sequence[str]) -> dict[str, str]:
        return self._digests(events, ids)

    def customers_by_id(self, ids: Sequence[str]) -> dict[str, Customer]:
        out: dict[str, Customer] = {}
        with self.engine.connect() as conn:
            for part in chunks(list(ids)):
                rows = conn.execute(select(customers).where(customers.c.id.in_(part))).mappings()
                out.update({r["id"]: convert.customer(r) for r in rows})
        return out

    def customer(self, customer_id: str) -> Customer | None:
        return self.customers_by_id([customer_id]).get(customer_id)

    def upsert_customers(self, items: Sequence[tuple[Customer, str]], *, now: datetime) -> None:
        """Insert new customers, update known ones (keeping their reachability and contact
        state), as of `now`; either way they are planned again."""
        if not items:
            return
        with self.engine.begin() as conn:
            existing: dict[str, dict[str, Any]] = {}
            for part in chunks([c.id for c, _ in items]):
                rows = conn.execute(
                    select(customers.c.id, customers.c.attributes).where(customers.c.id.in_(part))
                )
                existing.update({r.id: r.attributes or {} for r in rows})
            new: list[dict[str, Any]] = [
                {
                    "id": c.id,
                    "email": c.email,
                    "name": c.name,
                    "timezone": c.timezone,
                    "account": c.account,
                    "attributes": dict(c.attributes),
                    "attributes_at": None,
                    "created_at": c.created_at or now,
                    "updated_at": now,
                    "digest": digest,
                    "unsubscribed_all": False,
                    "unsubscribed_categories": [],
                    "hard_bounced": False,
                    "soft_bounces": 0,
                    "spam_reported": False,
                    "last_contact": {},
                    "dirty": True,
                    "next_plan_at": None,
                }
                for c, digest in items
                if c.id not in existing
            ]
            if new:
                conn.execute(insert(customers), new)
            changed = [
                {
                    "c_id": c.id,
                    "c_email": c.email,
                    "c_name": c.name,
                    "c_timezone": c.timezone,
                    "c_account": c.account,
                    # the file's attributes win, but what events taught us about the
                    # customer (open tickets, usage) is not forgotten
                    "c_attributes": {**existing[c.id], **c.attributes},
                    "c_digest": digest,
                }
                for c, digest in items
                if c.id in existing
            ]
            if changed:  # one statement, many rows; reachability and contacts stay as they are
                conn.execute(
                    update(customers)
                    .where(customers.c.id == bindparam("c_id"))
                    .values(
                        email=bindparam("c_email"),
                        name=bindparam("c_name"),
                        timezone=bindparam("c_timezone"),
                        account=bindparam("c_account"),
                        attributes=bindparam("c_attributes"),
                        digest=bindparam("c_digest"),
                        updated_at=now,
                        dirty=True,
                    ),
                    changed,
                )

    def add_messages(self, items: Sequence[tuple[Message, str]], *, now: datetime) -> None:
        """Store new messages as of `now` (created, and undecided, then)."""
        if not items:
            return
        with self.engine.begin() as conn:
            conn.execute(insert(messages), [convert.message_values(m, d, now) for m, d in items])
            recorded = [m for m, _ in items if m.kind == MessageKind.RECORDED and m.sent_at]
            touch_contacts(Driver(conn), recorded)
            self._mark_dirty(conn, {m.customer_id for m, _ in items})

    # -- shared helpers (methods, because the planning and dispatch mixins call them) -----

    def _mark_dirty(self, conn: Connection, ids: Iterable[str]) -> None:
        mark_dirty(conn, ids)
