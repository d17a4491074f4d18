"""`Store`: the one object that speaks SQL. Each method is one transaction.

Ingestion and reading live here; planning and dispatch in their own modules, mixed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, update

from cadence.clock import utcnow
from cadence.model import Customer, Event, Message, MessageKind, Status
from cadence.store import convert
from cadence.store.db import make_engine
from cadence.store.dispatch_ops import Claimed, DispatchOps
from cadence.store.planning_ops import PlanningOps
from cadence.store.reading_ops import DecisionRecord, ReadingOps, SimulationInput
from cadence.store.tables import customers, decisions, emails, events, messages

__all__ = ["Claimed", "DecisionRecord", "SimulationInput", "Store"]

CHUNK = 500  # ids per IN (...) list: well under every database's parameter limit


def chunks(ids: Sequence[str], size: int = CHUNK) -> Iterable[Sequence[str]]:
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


class Store(PlanningOps, DispatchOps, ReadingOps):
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

    def upsert_customers(self, items: Sequence[tuple[Customer, str]]) -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            existing: dict[str, dict[str, Any]] = {}
            for part in chunks([c.id for c, _ in items]):
                rows = conn.execute(
                    select(customers.c.id, customers.c.attributes).where(customers.c.id.in_(part))
                )
                existing.update({r.id: r.attributes or {} for r in rows})
            new = [
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
            for c, digest in items:
                if c.id in existing:
                    conn.execute(
                        update(customers)
                        .where(customers.c.id == c.id)
                        .values(
                            email=c.email,
                            name=c.name,
                            timezone=c.timezone,
                            account=c.account,
                            # the file's attributes win, but what events taught us about
                            # the customer (open tickets, usage) is not forgotten
                            attributes={**existing[c.id], **c.attributes},
                            updated_at=now,
                            digest=digest,
                            dirty=True,
                        )
                    )

    def add_messages(self, items: Sequence[tuple[Message, str]]) -> None:
        now = utcnow()
        if not items:
            return
        with self.engine.begin() as conn:
            conn.execute(insert(messages), [convert.message_values(m, d, now) for m, d in items])
            recorded = [m for m, _ in items if m.kind == MessageKind.RECORDED and m.sent_at]
            self._touch_contact(conn, recorded)
            self._mark_dirty(conn, {m.customer_id for m, _ in items})

    def add_playbook_messages(self, new: Sequence[Message]) -> int:
        """Insert the ones not stored yet; returns how many. Ids derive from what fired them,
        and the insert skips an id that exists, so two daemons doing the same sweep at the
        same moment still make one message."""
        if not new:
            return 0
        unique = {m.id: m for m in new}
        now = utcnow()
        rows = [convert.message_values(m, "playbook", now) for m in unique.values()]
        if self.is_postgres:
            from sqlalchemy.dialects.postgresql import insert as upsert
        else:
            from sqlalchemy.dialects.sqlite import insert as upsert  # type: ignore[assignment]
        created = 0
        with self.engine.begin() as conn:
            for row in rows:
                statement = upsert(messages).values(**row).on_conflict_do_nothing()
                created += len(conn.execute(statement.returning(messages.c.id)).all())
            self._mark_dirty(conn, {r["customer_id"] for r in rows})
        return created

    def add_events(self, items: Sequence[tuple[Event, str]]) -> None:
        """Insert events. What they mean (reachability, attributes, playbooks) applies when
        their time comes: see `unprocessed_events` and `apply_events`."""
        if not items:
            return
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(
                insert(events),
                [
                    {
                        "id": e.id,
                        "customer_id": e.customer_id,
                        "type": e.type,
                        "at": e.at,
                        "data": dict(e.data),
                        "attributes": dict(e.attributes),
                        "received_at": now,
                        "digest": d,
                        "processed": False,
                    }
                    for e, d in items
                ],
            )

    def unprocessed_events(self, limit: int, until: datetime | None = None) -> list[Event]:
        """Events not yet applied whose time has come (all of them without `until`)."""
        query = select(events).where(events.c.processed.is_(False))
        if until is not None:
            query = query.where(events.c.at <= until)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(events.c.at, events.c.id).limit(limit)).mappings()
            return [convert.event(r) for r in rows]

    def apply_events(self, applied: Sequence[Event]) -> None:
        """Apply what events mean to each customer, in time order, and mark them processed.
        Only events still unprocessed when this transaction marks them are applied, so the
        daemon and the HTTP handler (or two daemons) never apply one event twice."""
        if not applied:
            return
        with self.engine.begin() as conn:
            mine: set[str] = set()
            for part in chunks([e.id for e in applied]):
                mine |= set(
                    conn.scalars(
                        update(events)
                        .where(events.c.id.in_(part), events.c.processed.is_(False))
                        .values(processed=True)
                        .returning(events.c.id)
                    )
                )
            applied = [e for e in applied if e.id in mine]
            ids = sorted({e.customer_id for e in applied})
            rows = {
                r["id"]: dict(r)
                for part in chunks(ids)
                for r in conn.execute(select(customers).where(customers.c.id.in_(part))).mappings()
            }
            for e in sorted(applied, key=lambda x: (x.at, x.id)):
                row = rows.get(e.customer_id)
                if row is not None:
                    _apply(row, e)
            for row in rows.values():
                conn.execute(
                    update(customers)
                    .where(customers.c.id == row["id"])
                    .values(
                        unsubscribed_all=row["unsubscribed_all"],
                        unsubscribed_categories=sorted(row["unsubscribed_categories"]),
                        hard_bounced=row["hard_bounced"],
                        soft_bounces=row["soft_bounces"],
                        spam_reported=row["spam_reported"],
                        attributes=row["attributes"],
                        attributes_at=row["attributes_at"],
                        dirty=True,
                    )
                )

    def cancel_messages(
        self, ids: Sequence[str], by: str, at: datetime, *, event: str | None = None
    ) -> dict[str, str]:
        refused: dict[str, str] = {}
        with self.engine.begin() as conn:
            rows = {
                r["id"]: r
                for part in chunks(list(ids))
                for r in conn.execute(select(messages).where(messages.c.id.in_(part))).mappings()
            }
            done = []
            for mid in ids:
                row = rows.get(mid)
                if row is None:
                    refused[mid] = "no such message"
                elif row["kind"] == MessageKind.RECORDED:
                    refused[mid] = "it was sent by another system (recorded)"
                elif row["in_flight"]:
                    refused[mid] = "it is being sent right now"
                elif row["final"] and row["status"] != Status.HELD:
                    refused[mid] = f"it is already {row['status']}"
                else:
                    done.append(row)
            reason = f"cancelled by {by}"
            for row in done:
                extra = {"counted": [], "won_by": None, "next_allowed": None, "event": event}
                conn.execute(
                    update(messages)
                    .where(messages.c.id == row["id"])
                    .values(
                        status=str(Status.CANCELLED),
                        reason=reason,
                        rule=None,
                        final=True,
                        cancelled_by=by,
                        decided_at=at,
                        send_at=None,
                        email_id=None,
                        details=extra,
                    )
                )
                conn.execute(
                    insert(decisions).values(
                        message_id=row["id"],
                        customer_id=row["customer_id"],
                        decided_at=at,
                        status=str(Status.CANCELLED),
                        send_at=None,
                        email_id=None,
                        rule=None,
                        reason=reason,
                        details=extra,
                        rules_version=row["rules_version"],
                    )
                )
                if row["email_id"]:
                    conn.execute(
                        delete(emails).where(
                            and_(emails.c.id == row["email_id"], emails.c.status == "planned")
                        )
                    )
            self._mark_dirty(conn, {r["customer_id"] for r in done})
        return refused

    # -- shared helpers ---------------------------------------------------------------------

    def _mark_dirty(self, conn: Connection, ids: Iterable[str]) -> None:
        ordered = sorted(set(ids))
        for part in chunks(ordered):
            conn.execute(update(customers).where(customers.c.id.in_(part)).values(dirty=True))

    def _touch_contact(
        self, conn: Connection, sent: Sequence[Message], at: datetime | None = None
    ) -> None:
        """Keep each customer's last contact times, per role and for human mail."""
        by_customer: dict[str, dict[str, datetime]] = {}
        for m in sent:
            when = at or m.sent_at
            if when is None or m.to is not None:
                continue
            keys = by_customer.setdefault(m.customer_id, {})
            for key in convert.contact_keys(m):
                if key not in keys or keys[key] < when:
                    keys[key] = when
        for part in chunks(sorted(by_customer)):
            rows = conn.execute(
                select(customers.c.id, customers.c.last_contact).where(customers.c.id.in_(part))
            )
            for cid, current in rows:
                merged = dict(current or {})
                for key, when in by_customer[cid].items():
                    old = merged.get(key)
                    if old is None or datetime.fromisoformat(old) < when:
                        merged[key] = when.isoformat()
                conn.execute(
                    update(customers).where(customers.c.id == cid).values(last_contact=merged)
                )


def _apply(row: dict[str, Any], e: Event) -> None:
    """What an event means to the customer's reachability and attributes."""
    cats = set(e.data.get("categories") or ()) if isinstance(e.data, dict) else set()
    current = set(row["unsubscribed_categories"] or ())
    if e.type == "unsubscribed":
        if cats:
            row["unsubscribed_categories"] = current | cats
        else:
            row["unsubscribed_all"] = True
    elif e.type == "resubscribed":
        if cats:
            row["unsubscribed_categories"] = current - cats
        else:
            row["unsubscribed_all"] = False
            row["unsubscribed_categories"] = set()
    elif e.type == "bounced":
        if e.data.get("kind") == "hard":
            row["hard_bounced"] = True
        else:
            row["soft_bounces"] = (row["soft_bounces"] or 0) + 1
    elif e.type == "spam_reported":
        row["spam_reported"] = True
    row["unsubscribed_categories"] = set(row["unsubscribed_categories"] or ())
    if e.attributes and (row["attributes_at"] is None or e.at >= row["attributes_at"]):
        row["attributes"] = {**(row["attributes"] or {}), **e.attributes}
        row["attributes_at"] = e.at
