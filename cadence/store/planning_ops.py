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
from cadence.store.tables import UNPLANNED_TRANSACTIONAL, customers, emails, events

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine


class PlanningOps:
    engine: Engine
    is_postgres: bool

    def customers_to_plan(self, now: datetime, limit: int) -> list[str]:
        """Customers with transactional mail not planned yet, then those marked dirty, then
        those whose next planned moment has come. Each lookup on an index of its own (an `OR`
        would scan every customer): an idle tick must cost the same at ten thousand
        customers as at a million. Receipts first: they must leave within a second even
        while a burst of other mail is being planned."""
        with self.engine.connect() as conn:
            found = self._unplanned_transactional(conn, limit)
            if len(found) < limit:
                found += conn.scalars(
                    # `= true`, not `IS true`: PostgreSQL uses an index only for the former
                    select(customers.c.id).where(customers.c.dirty == true()).limit(limit)
                )
            found = list(dict.fromkeys(found))
            if len(found) >= limit:
                return found[:limit]
            due = conn.scalars(
                select(customers.c.id)
                .where(customers.c.next_plan_at <= now)
                .order_by(customers.c.next_plan_at)
                .limit(limit - len(found))
            )
            return list(dict.fromkeys([*found, *due]))

    def has_unplanned_transactional(self) -> bool:
        """Whether a receipt (or other transactional mail) waits for its first plan: what a
        daemon asks several times a second to start a pass at once (a partial index of the
        few such messages, so the question costs the same at any size)."""
        with self.engine.connect() as conn:
            return bool(self._unplanned_transactional(conn, 1))

    def _unplanned_transactional(self, conn: Connection, limit: int) -> list[str]:
        where = UNPLANNED_TRANSACTIONAL["postgresql" if self.is_postgres else "sqlite"]
        return list(
            conn.scalars(
                text(f"SELECT DISTINCT customer_id FROM messages WHERE {where} LIMIT :n"),
                {"n": limit},
            )
        )

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
        self,
        ids: Sequence[str],
        now: datetime,
        lookback: timedelta,
        *,
        account: bool = True,
        open_messages: bool = True,
    ) -> list[CustomerContext]:
        with self.engine.connect() as conn:
            return plan_reading.load_contexts(
                Driver(conn), ids, now, lookback, account=account, open_messages=open_messages
            )

    def plan_batch(
        self,
        ids: Sequence[str],
        now: datetime,
        lookback: timedelta,
        plan: Callable[[Sequence[CustomerContext]], Sequence[Plan]],
        rules_version: str,
        *,
        accounts: bool = False,
    ) -> int:
        """Read, plan and write back a batch in one transaction, the customers in their
        groups (`plan_reading.units`: with `accounts`, an account where something changed
        is planned whole), each group planned by one call of `plan`. On PostgreSQL each
        customer is locked for the transaction (an advisory lock); a group with a customer
        another daemon holds is left to it, so limits hold however many daemons run."""
        with self.engine.begin() as conn:
            db = Driver(conn)
            groups = plan_reading.units(db, ids, accounts=accounts)
            if self.is_postgres:
                held = set(
                    conn.scalars(
                        text(
                            "SELECT x FROM unnest(CAST(:ids AS text[])) AS x "
                            "WHERE pg_try_advisory_xact_lock(hashtext(x))"
                        ),
                        {"ids": [i for g in groups for i in g.ids]},
                    )
                )
                groups = [g for g in groups if held.issuperset(g.ids)]
            read: dict[str, Any] = {}
            contexts: dict[str, CustomerContext] = {}
            for alone in (False, True):
                for c in plan_reading.load_contexts(
                    db,
                    [i for g in groups if g.peers_planned == alone for i in g.ids],
                    now,
                    lookback,
                    account=accounts,
                    peers_planned=alone,
                    pending_rows=read,
                ):
                    contexts[c.customer.id] = c
            plans: list[Plan] = []
            for group in groups:
                members = [contexts[i] for i in group.ids if i in contexts]
                if members:
                    plans.extend(plan(members))
            plan_writing.save_plans(db, plans, rules_version, current=read)
            return len(plans)

    def save_plans(self, plans: Sequence[Plan], rules_version: str) -> None:
        with self.engine.begin() as conn:
            plan_writing.save_plans(Driver(conn), plans, rules_version)
