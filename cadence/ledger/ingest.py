"""What comes into the ledger: customers, messages, events and cancellations.

Events are stored as they arrive and take effect when their time (`at`) comes, applied in
time order, so an old event replayed late never overwrites what a newer one said.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, delete, false, insert, or_, select, text, update

from cadence.engine.events import apply_events
from cadence.ledger import columns, convert
from cadence.ledger.attention import mark_dirty, touch_contacts
from cadence.ledger.driver import Driver
from cadence.ledger.statements import chunks, upsert
from cadence.ledger.tables import customers, decisions, emails, events, messages
from cadence.model import Customer, EmailStatus, Event, Message, MessageKind, Status

if TYPE_CHECKING:
    from sqlalchemy import Engine

BEING_SENT = "it is being sent right now"
#: the advisory lock two daemons' playbook inserts take turns on: outside the int4 range of the
#: per-customer planning locks (hashtext), so the two never meet
PLAYBOOK_LOCK = 7_000_000_001


#: rows loaded at once from which PostgreSQL's statistics are gathered on the spot
BULK_ROWS = 1000


class Ingest:
    """What comes in: customers, messages (to send, or sent elsewhere), events, the
    check-ins playbooks create, cancellations. Each method one transaction."""

    def __init__(self, engine: Engine, is_postgres: bool) -> None:
        self.engine, self.is_postgres = engine, is_postgres

    def after_bulk_load(self, rows: int) -> None:
        """After a load of BULK_ROWS rows or more, PostgreSQL's statistics are gathered at
        once (ANALYZE samples: a second or so at a million rows). Autovacuum would gather them
        a minute or so later; a pass run before that plans its reads without them and scans
        whole tables (15 ms a batch of 500 customers where the index takes 2, at 10k). SQLite
        keeps no statistics unless asked, and its plans here do not need them."""
        if not self.is_postgres or rows < BULK_ROWS:
            return
        with self.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE customers, messages, events")

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
                    "max_per_week": None,
                    "last_contact": {},
                    "engagement": {},
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
            recorded = [
                m
                for m, _ in items
                if m.kind == MessageKind.RECORDED and m.sent_at and not m.planned
            ]
            touch_contacts(Driver(conn), recorded)
            mark_dirty(conn, {m.customer_id for m, _ in items})

    def planned_touches(self, ids: Sequence[str]) -> dict[str, datetime]:
        """Of these ids, the touches planned elsewhere and not yet done, with their time."""
        out: dict[str, datetime] = {}
        with self.engine.connect() as conn:
            for part in chunks(list(ids)):
                rows = conn.execute(
                    select(messages.c.id, messages.c.sent_at).where(
                        messages.c.id.in_(part),
                        messages.c.planned.is_(True),
                        messages.c.status == str(Status.RECORDED),
                    )
                )
                out.update({r.id: r.sent_at for r in rows})
        return out

    def touches_done(self, items: Sequence[tuple[Message, str]], *, now: datetime) -> None:
        """Touches planned elsewhere, now recorded as done (`sent_at`, new digest): the one
        change an id may take. They count at the time they happened; contact times move."""
        if not items:
            return
        with self.engine.begin() as conn:
            for m, digest in items:
                conn.execute(
                    update(messages)
                    .where(messages.c.id == m.id, messages.c.planned.is_(True))
                    .values(
                        sent_at=m.sent_at,
                        send_at=m.sent_at,
                        planned=False,
                        digest=digest,
                        reason=convert.recorded_reason(m),
                        decided_at=now,
                    )
                )
            touch_contacts(Driver(conn), [m for m, _ in items])
            mark_dirty(conn, {m.customer_id for m, _ in items})

    def add_events(self, items: Sequence[tuple[Event, str]], *, now: datetime) -> None:
        """Insert events (ids are new: the caller filtered repeats). What they mean
        (reachability, attributes, playbooks) applies when their time comes: see
        `unprocessed_events` and `apply_events`."""
        if not items:
            return
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
        # every pass asks: through the driver, not a statement SQLAlchemy builds each time;
        # `processed = ?` (not IS) so that the index on (processed, at) serves it
        with self.engine.connect() as conn:
            db = Driver(conn)
            where, params = "processed = ?", [False]
            if until is not None:
                where, params = f"{where} AND at <= ?", [*params, db.time(until)]
            rows = db.select(
                events, columns.EVENT, f"{where} ORDER BY at, id LIMIT ?", [*params, limit]
            )
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
                        .where(events.c.id.in_(part), events.c.processed == false())
                        .values(processed=True)
                        .returning(events.c.id)
                    )
                )
            applied = [e for e in applied if e.id in mine]
            ids = sorted({e.customer_id for e in applied})
            known = {
                r["id"]: convert.customer(r)
                for part in chunks(ids)
                for r in conn.execute(select(customers).where(customers.c.id.in_(part))).mappings()
            }
            if not known:
                return
            after = {
                cid: apply_events(c, (e for e in applied if e.customer_id == cid))
                for cid, c in known.items()
            }
            # through the driver: one statement on PostgreSQL, the reachability by the codec
            Driver(conn).update(
                customers,
                "id",
                [
                    {
                        "id": c.id,
                        **convert.reachability_values(c.reach),
                        **convert.engagement_values(c.engagement),
                        "attributes": dict(c.attributes),
                        "attributes_at": c.attributes_at,
                    }
                    for c in sorted(after.values(), key=lambda c: c.id)
                ],
                fixed={"dirty": True},
            )

    def add_playbook_messages(self, new: Sequence[Message], *, now: datetime) -> int:
        """Insert the ones not stored yet; returns how many. Ids derive from what fired them,
        and the insert skips an id that exists, so two daemons doing the same sweep at the
        same moment still make one message."""
        if not new:
            return 0
        unique = {m.id: m for m in new}
        rows = [convert.message_values(m, "playbook", now) for m in unique.values()]
        with self.engine.begin() as conn:
            if self.is_postgres:
                # two daemons sweeping at once take turns here (until commit): each then
                # counts only what it stored. SQLite has one daemon, and one writer anyway
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PLAYBOOK_LOCK})
            # one compiled statement for all rows (a sweep at a million customers makes tens
            # of thousands); the count is what did not exist before
            existing = {
                i
                for part in chunks(list(unique))
                for i in conn.scalars(select(messages.c.id).where(messages.c.id.in_(part)))
            }
            fresh = [r for r in rows if r["id"] not in existing]
            if fresh:
                conn.execute(upsert(conn, messages).on_conflict_do_nothing(), fresh)
            created = len(fresh)
            mark_dirty(conn, {r["customer_id"] for r in fresh})
        return created

    def cancel_messages(
        self,
        ids: Sequence[str],
        by: str,
        at: datetime,
        *,
        event: str | None = None,
        rule: str | None = None,
    ) -> dict[str, str]:
        """Cancel what can be; returns each id that could not be, with why. The update itself
        re-checks that a message is open and not in flight, so a claim that slips in between
        the read and the write wins, and the message is reported as being sent. `rule`: the
        playbook or cancel rule that cancelled it on `event` (none: a person did)."""
        refused: dict[str, str] = {}
        ids = list(dict.fromkeys(ids))
        with self.engine.begin() as conn:
            rows = {
                r["id"]: r
                for part in chunks(ids)
                for r in conn.execute(select(messages).where(messages.c.id.in_(part))).mappings()
            }
            candidates = []
            for mid in ids:
                row = rows.get(mid)
                if row is None:
                    refused[mid] = "no such message"
                elif row["kind"] == MessageKind.RECORDED and not row["planned"]:
                    refused[mid] = (
                        "it was sent by another system (recorded)"
                        if row["channel"] == "email"
                        else f"the {row['channel']} already happened (recorded)"
                    )
                elif row["in_flight"]:
                    refused[mid] = BEING_SENT
                elif row["final"] and row["status"] != Status.HELD and not row["planned"]:
                    refused[mid] = f"it is already {row['status']}"
                else:
                    candidates.append(mid)
            reason = f"cancelled by {by}"
            extra: dict[str, Any] = {
                "counted": [],
                "won_by": None,
                "next_allowed": None,
                "event": event,
            }
            done: list[Any] = []
            for part in chunks(candidates):
                done += conn.execute(
                    update(messages)
                    .where(
                        messages.c.id.in_(part),
                        messages.c.in_flight.is_(False),
                        or_(
                            messages.c.final.is_(False),
                            messages.c.status == str(Status.HELD),
                            messages.c.planned.is_(True),  # a touch planned elsewhere
                        ),
                    )
                    .values(
                        status=str(Status.CANCELLED),
                        reason=reason,
                        rule=rule,
                        final=True,
                        cancelled_by=by,
                        planned=False,
                        decided_at=at,
                        send_at=None,
                        email_id=None,
                        details=extra,
                    )
                    .returning(
                        messages.c.id,
                        messages.c.customer_id,
                        messages.c.rules_version,
                    )
                ).all()
            cancelled = {r.id for r in done}
            refused.update({mid: BEING_SENT for mid in candidates if mid not in cancelled})
            if not done:
                return refused
            conn.execute(
                insert(decisions),
                [
                    {
                        "message_id": r.id,
                        "customer_id": r.customer_id,
                        "decided_at": at,
                        "status": str(Status.CANCELLED),
                        "send_at": None,
                        "email_id": None,
                        "rule": rule,
                        "reason": reason,
                        "details": extra,
                        "rules_version": r.rules_version,
                    }
                    for r in done
                ],
            )
            # the planned emails they were in are void; the re-plan places the other members
            planned = sorted({rows[mid]["email_id"] for mid in cancelled if rows[mid]["email_id"]})
            for part in chunks(planned):
                conn.execute(
                    delete(emails).where(
                        and_(emails.c.id.in_(part), emails.c.status == EmailStatus.PLANNED)
                    )
                )
            mark_dirty(conn, {r.customer_id for r in done})
        return refused
