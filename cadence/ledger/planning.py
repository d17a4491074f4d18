"""Planning against the store: which customers are due, and re-planning a batch of them in
one transaction (reading their contexts: `plan_reading`; writing the plans: `plan_writing`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, text, update

from cadence.ledger import plan_reading, plan_writing
from cadence.ledger.driver import Driver
from cadence.ledger.tables import UNPLANNED_TRANSACTIONAL, customers, emails
from cadence.model import CustomerContext, EmailStatus, Message, Plan

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine


@dataclass
class PlanningBatch:
    """Customers read for planning (`Planning.batch`): `groups` to plan, each with one call of
    the planner (`plan_account`), and `save` to write the plans back in the same
    transaction."""

    groups: list[list[CustomerContext]]
    _db: Driver
    _read: dict[str, Any]
    # the batch reached its limit with customers asked for not even tried: more to plan
    full: bool = False
    # customers asked for that another daemon planned between the look and the lock: the
    # next look finds others
    overtaken: bool = False

    def save(self, plans: Sequence[Plan], rules_version: str) -> None:
        plan_writing.save_plans(self._db, plans, rules_version, current=self._read)


#: how long a SQLite file must have stood still before its stamp is trusted (`UrgentProbe`)
SETTLED_NS = 1_000_000_000


class UrgentProbe:
    """A look for transactional mail waiting for its first plan, on a connection of its own
    (see `Planning.unplanned_transactional_probe`); `close` gives the connection back."""

    def __init__(self, engine: Engine, is_postgres: bool) -> None:
        where = UNPLANNED_TRANSACTIONAL["postgresql" if is_postgres else "sqlite"]
        self._query = f"SELECT 1 FROM messages WHERE {where} LIMIT 1"
        self._conn = engine.raw_connection()
        # SQLite: the database file and its write-ahead log, whose sizes and times change
        # with every commit by anyone; while they stand still, nothing was written
        database = None if is_postgres else engine.url.database
        self._files = [Path(database), Path(database + "-wal")] if database else []
        self._still: tuple[tuple[int, int], ...] | None = None

    def _stamp(self) -> tuple[tuple[int, int], ...]:
        stamps = []
        for path in self._files:
            try:
                st = path.stat()
            except FileNotFoundError:
                stamps.append((0, 0))
            else:
                stamps.append((st.st_mtime_ns, st.st_size))
        return tuple(stamps)

    def __call__(self) -> bool:
        stamp = self._stamp() if self._files else None
        if stamp is not None and stamp == self._still:
            return False  # no commit since a look that found nothing
        found = self._look()
        # a file's time moves in the kernel's coarse steps: a commit in the same step as
        # the stamp, that reused the log's space, could leave it as it was; so files
        # written in the last second are not trusted to say "nothing new"
        settled = stamp is not None and max(t for t, _ in stamp) < time.time_ns() - SETTLED_NS
        self._still = stamp if settled and not found else None
        return found

    def _look(self) -> bool:
        cursor = self._conn.cursor()
        try:
            cursor.execute(self._query)
            found = cursor.fetchone() is not None
        finally:
            cursor.close()
            # no transaction left open between looks (on PostgreSQL a SELECT begins one,
            # and an idle one holds back vacuum)
            self._conn.rollback()
        return found

    def close(self) -> None:
        self._conn.close()


class Planning:
    """Who needs a plan, and a batch of them read, planned and written back."""

    def __init__(self, engine: Engine, is_postgres: bool, *, memo: bool = False) -> None:
        self.engine, self.is_postgres = engine, is_postgres
        # with `memo`, the rows read for plans (customers, messages, history emails) are
        # converted once while they stay the same (see `Driver.memo`): for a small ledger
        self._memo: dict[str, dict[Any, Any]] | None = {} if memo else None

    def customers_to_plan(self, now: datetime, limit: int) -> list[str]:
        """Customers with transactional mail not planned yet, then those marked dirty, then
        those whose next planned moment has come. Each lookup on an index of its own (an `OR`
        would scan every customer), the three in one statement: an idle tick must cost the
        same at ten thousand customers as at a million, and a pass asks at least once.
        Receipts first: they must leave within a second even while a burst of other mail is
        being planned."""
        with self.engine.connect() as conn:
            db = Driver(conn)
            urgent = UNPLANNED_TRANSACTIONAL["postgresql" if db.postgres else "sqlite"]
            no_time = "CAST(NULL AS timestamptz)" if db.postgres else "NULL"
            rows = db.fetch(
                "SELECT k, id FROM ("
                f"SELECT 0 AS k, u.customer_id AS id, {no_time} AS t FROM (SELECT DISTINCT "
                f"customer_id FROM messages WHERE {urgent} LIMIT ?) AS u "
                f"UNION ALL SELECT 1, d.id, {no_time} FROM (SELECT id FROM customers "
                f"WHERE dirty = {'true' if db.postgres else '1'} LIMIT ?) AS d "
                "UNION ALL SELECT 2, n.id, n.next_plan_at FROM (SELECT id, next_plan_at "
                "FROM customers WHERE next_plan_at <= ? ORDER BY next_plan_at LIMIT ?) AS n"
                ") AS due ORDER BY k, t",
                [limit, limit, db.time(now), limit],
            )
        return list(dict.fromkeys(cid for _, cid in rows))[:limit]

    def unplanned_transactional_probe(self) -> UrgentProbe:
        """Whether a receipt (or other transactional mail) waits for its first plan, asked
        many times a second (the daemon's look for receipts, to start a pass at once): a
        partial index of the few such messages answers at any size, on a connection of its
        own, held open, through the driver's own cursor. After an idle wait, a look through
        a pooled SQLAlchemy connection cost six times the query itself."""
        return UrgentProbe(self.engine, self.is_postgres)

    def mark_all_dirty(self) -> None:
        """Every customer must be planned again (new rules). On PostgreSQL the rows are locked
        in id order first, the order every other writer of several customers takes them: a
        plain UPDATE takes them in the table's order, and deadlocked with a daemon's sweep
        marking some customers dirty at the same moment."""
        with self.engine.begin() as conn:
            if self.is_postgres:
                conn.execute(text("SELECT id FROM customers ORDER BY id FOR UPDATE"))
            conn.execute(update(customers).values(dirty=True))

    def due_count(self, now: datetime) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.scalar(
                    select(func.count())
                    .select_from(emails)
                    .where(emails.c.status == EmailStatus.PLANNED, emails.c.send_at <= now)
                )
                or 0
            )

    def next_wakeup(self) -> datetime | None:
        """The earliest time anything is due: a planned email, a customer's next plan, an
        event taking effect (one statement, each part on an index of its own)."""
        with self.engine.connect() as conn:
            db = Driver(conn)
            ((a, b, c),) = db.fetch(
                f"SELECT (SELECT min(send_at) FROM emails WHERE status = '{EmailStatus.PLANNED}'), "
                "(SELECT min(next_plan_at) FROM customers), "
                f"(SELECT min(at) FROM events WHERE processed = {'false' if db.postgres else '0'})",
                [],
            )
            read = db.reader("time")
        times = [read(t) if read else t for t in (a, b, c) if t is not None]
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
                Driver(conn, memo=self._memo),
                ids,
                now,
                lookback,
                account=account,
                open_messages=open_messages,
            )

    @contextmanager
    def batch(
        self,
        ids: Sequence[str],
        now: datetime,
        lookback: timedelta,
        *,
        account_mail: Callable[[Message], bool] | None = None,
        limit: int | None = None,
    ) -> Iterator[PlanningBatch]:
        """A batch of customers read for planning, in the groups they are planned in, inside
        one transaction that the caller's `PlanningBatch.save` writes into. With
        `account_mail` (which messages an account-scope limit counts: the rules plan accounts
        together), a customer with such mail open is grouped with the others of its account
        that have some (`plan_reading.units`: all of them where something changed in the
        account, else alone against their standing plans), seeing the account's mail; the
        rest of the customers asked for are each a group alone. On PostgreSQL each customer
        is locked for the transaction (an advisory lock); a group with a customer another
        daemon holds is left to it, so limits hold however many daemons run. With `limit`,
        groups are taken in order until they hold that many customers: given more
        candidates than it plans, a daemon passes over what others hold and takes the
        next, so several daemons share a backlog instead of queueing for one batch; and
        what another daemon planned meanwhile is left out."""
        with self.engine.begin() as conn:
            db = Driver(conn, memo=self._memo)
            units = plan_reading.units(db, ids, accounts=account_mail is not None)
            full = gone = False
            if self.is_postgres:
                units, full = _lock_units(conn, units, limit)
                if limit is not None:
                    due = _still_due(conn, units, now)
                    gone = len(due) < len(units)
                    units = due
            read: dict[str, Any] = {}
            contexts = {
                c.customer.id: c
                for c in plan_reading.load_contexts(
                    db,
                    [i for g in units for i in g.ids],
                    now,
                    lookback,
                    account=False,
                    playbook_runs=False,
                    pending_rows=read,
                )
            }
            asked = set(ids)
            together: list[list[str]] = []  # planned with their account: its mail sent
            against: list[str] = []  # planned alone against the account's standing plans
            alone: list[CustomerContext] = []
            for unit in units:
                members = [contexts[i] for i in unit.ids if i in contexts]
                sharing = [
                    c
                    for c in members
                    if account_mail is not None and any(account_mail(m) for m in c.pending)
                ]
                # who has no mail an account limit counts plans the same alone, and only
                # if it asked: nothing of the account's changes its plan
                alone += [c for c in members if c not in sharing and c.customer.id in asked]
                if sharing and unit.peers_planned:
                    against += [c.customer.id for c in sharing]
                elif sharing:
                    together.append([c.customer.id for c in sharing])
            since = now - lookback
            for peers_planned, wanted in (
                (False, [i for g in together for i in g]),
                (True, against),
            ):
                for c in plan_reading.with_accounts(
                    db, [contexts[i] for i in wanted], since, peers_planned=peers_planned
                ):
                    contexts[c.customer.id] = c
            groups = [[contexts[i] for i in g] for g in together]
            groups += [[c] for c in (*(contexts[i] for i in against), *alone)]
            yield PlanningBatch(groups, db, read, full, gone)


def _lock_units(
    conn: Connection, units: Sequence[plan_reading.Unit], limit: int | None
) -> tuple[list[plan_reading.Unit], bool]:
    """The units, in order, whose every customer this transaction could lock (advisory
    locks, held until it ends), up to `limit` customers (and never less than one unit).
    Locks are tried a round at a time over the next units that fit what is still wanted,
    so a daemon holds little it does not plan (a unit another daemon holds part of) and
    passes over what other daemons hold to the next customers. Also says whether it
    stopped at `limit` with units not tried."""
    wanted = sum(len(u.ids) for u in units) if limit is None else limit
    held: list[plan_reading.Unit] = []
    count = at = 0
    while at < len(units) and count < wanted:
        round_units = [units[at]]
        size = len(units[at].ids)
        at += 1
        while at < len(units) and count + size + len(units[at].ids) <= wanted:
            size += len(units[at].ids)
            round_units.append(units[at])
            at += 1
        locked = set(
            conn.scalars(
                text(
                    "SELECT x FROM unnest(CAST(:ids AS text[])) AS x "
                    "WHERE pg_try_advisory_xact_lock(hashtext(x))"
                ),
                {"ids": [i for u in round_units for i in u.ids]},
            )
        )
        for unit in round_units:
            if locked.issuperset(unit.ids):
                held.append(unit)
                count += len(unit.ids)
    return held, at < len(units)


def _still_due(
    conn: Connection, units: Sequence[plan_reading.Unit], now: datetime
) -> list[plan_reading.Unit]:
    """The units, once locked, that still want a plan: another daemon may have planned a
    customer between the look for candidates and the lock (its plan is then as fresh as
    ours would be, so it is left as it is)."""
    ids = [i for u in units for i in u.ids]
    if not ids:
        return []
    due = set(
        conn.scalars(
            text(
                "SELECT id FROM customers WHERE id = ANY(CAST(:ids AS text[])) "
                "AND (dirty OR next_plan_at <= :now)"
            ),
            {"ids": ids, "now": now},
        )
    )
    return [u for u in units if due.intersection(u.ids)]
