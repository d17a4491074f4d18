"""Planning against the store: which customers are due, and re-planning a batch of them in
one transaction (reading their contexts: `plan_reading`; writing the plans: `plan_writing`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import false, func, select, text, true, update

from cadence.model import CustomerContext, Plan
from cadence.store import plan_reading, plan_writing
from cadence.store.driver import Driver
from cadence.store.tables import customers, emails, events

if TYPE_CHECKING:
    from sqlalchemy import Engine


class PlanningOps:
    engine: Engine
    is_postgres: bool

    def customers_to_plan(self, now: datetime, limit: int) -> list[str]:
        """Customers marked dirty, then those whose next planned moment has come. Two
        lookups, each on its own index: an `OR` of the two would scan every customer, and
        an idle tick must cost the same at ten thousand customers as at a million."""
        with self.engine.connect() as conn:
            dirty = list(
                conn.scalars(
                    # `= true`, not `IS true`: PostgreSQL uses an index only for the former
                    select(customers.c.id).where(customers.c.dirty == true()).limit(limit)
                )
            )
            if len(dirty) >= limit:
                return dirty
            due = conn.scalars(
                select(customers.c.id)
                .where(customers.c.next_plan_at <= now)
                .order_by(customers.c.next_plan_at)
                .limit(limit - len(dirty))
            )
            return list(dict.fromkeys([*dirty, *due]))

    def mark_all_dirty(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(customers).values(dirty=True))

    def due_count(self, now: datetime) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.scalar(
                    select(func.count())
                    .select_from(emails)
                    .where(emails.c.status == "planned", emails.c.send_at <= now)
                )
                or 0
            )

    def next_wakeup(self) -> datetime | None:
        """The earliest time anything is due: a planned email, or a customer's next plan."""
        with self.engine.connect() as conn:
            a = conn.scalar(select(func.min(emails.c.send_at)).where(emails.c.status == "planned"))
            b = conn.scalar(select(func.min(customers.c.next_plan_at)))
            c = conn.scalar(select(func.min(events.c.at)).where(events.c.processed == false()))
        times = [t for t in (a, b, c) if t is not None]
        if times and any(isinstance(t, str) for t in times):  # SQLite aggregate: text
            times = [datetime.fromisoformat(str(t)).replace(tzinfo=None) for t in times]
        from datetime import UTC

        times = [t if t.tzinfo else t.replace(tzinfo=UTC) for t in times]
        return min(times) if times else None

    def load_contexts(
        self, ids: Sequence[str], now: datetime, lookback: timedelta, *, account: bool = True
    ) -> list[CustomerContext]:
        with self.engine.connect() as conn:
            return plan_reading.load_contexts(Driver(conn), ids, now, lookback, account=account)

    def plan_batch(
        self,
        ids: Sequence[str],
        now: datetime,
        lookback: timedelta,
        plan: Callable[[CustomerContext], Plan],
        rules_version: str,
    ) -> int:
        """Read, plan and write back a batch in one transaction. On PostgreSQL each customer
        is locked for the transaction (an advisory lock; customers another daemon holds are
        left to it), so limits hold however many daemons run."""
        with self.engine.begin() as conn:
            if self.is_postgres:
                ids = list(
                    conn.scalars(
                        text(
                            "SELECT x FROM unnest(CAST(:ids AS text[])) AS x "
                            "WHERE pg_try_advisory_xact_lock(hashtext(x))"
                        ),
                        {"ids": list(ids)},
                    )
                )
            db = Driver(conn)
            read: dict[str, Any] = {}
            contexts = plan_reading.load_contexts(db, ids, now, lookback, pending_rows=read)
            plans = [plan(ctx) for ctx in contexts]
            plan_writing.save_plans(db, plans, rules_version, current=read)
            return len(plans)

    def save_plans(self, plans: Sequence[Plan], rules_version: str) -> None:
        with self.engine.begin() as conn:
            plan_writing.save_plans(Driver(conn), plans, rules_version)
