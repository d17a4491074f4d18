"""Claiming due emails under a lease, and giving a claim back.

A claim is what keeps an email from going twice, so it must hold however many daemons run and
however the database interleaves them:

- the due emails are taken by an `UPDATE ... WHERE status = 'planned' ... RETURNING`; on
  PostgreSQL of candidates first locked with `FOR UPDATE SKIP LOCKED` (two daemons take
  disjoint sets and never wait on each other); on SQLite as one statement with the choice
  as its sub-select, which takes the write lock, so no read-then-write gap exists for
  another process to slip into;
- the members are then taken by `UPDATE messages SET in_flight = true WHERE ... in_flight =
  false AND final = false`: a message already in flight (another daemon's email for it, from
  an older plan) or settled stops the email here, the last line of defence. The email is
  dropped and its customer planned again; it is never sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, update

from cadence.ledger import columns, convert
from cadence.ledger.attention import look_again, mark_dirty
from cadence.ledger.driver import Driver
from cadence.ledger.statements import chunks
from cadence.ledger.tables import customers, emails, messages
from cadence.model import Customer, Email, EmailStatus, Message

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine


#: how late an email may still go on the plan that placed it, without a new one: long enough
#: for a burst to leave at full speed, short enough that an email cannot stray far past the
#: end of its send window
ON_PLAN_GRACE = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A due email this daemon now holds a lease on, with what it needs to render it."""

    email: Email
    customer: Customer
    members: tuple[Message, ...]
    attempts: int = 0  # earlier transport calls for this email (temporary failures)


#: what `convert.email` needs, and the attempts so far
EMAIL = ("id", "customer_id", "send_at", *columns.EMAIL_CONTENT, "attempts")

# An email goes on its plan only while that plan is current: a daemon busy with a burst sends
# before it has planned everyone again. Not for a customer marked dirty (an unsubscribe, a
# cancel, new mail since the plan may change this email too), and not late by more than
# ON_PLAN_GRACE while the customer waits for a new plan (its window may have closed, its
# message expired: the planner wakes every customer at its emails' times, so the new plan
# comes). Receipts and ticket replies before the backlog of proactive mail; among emails due
# at the same moment (a burst) by customer, not by email id (a hash): a claim's emails, and so
# its chunks, then write neighbouring rows of the tables and indexes kept by customer, and
# SQLite writes every page a commit touched.
DUE = (
    "SELECT emails.id FROM emails WHERE emails.status = ? AND emails.send_at <= ? "
    "AND NOT (EXISTS (SELECT customers.id FROM customers "
    "WHERE customers.id = emails.customer_id AND (customers.dirty = {true} "
    "OR customers.next_plan_at <= ? AND emails.send_at < ?))) "
    "ORDER BY emails.transactional DESC, emails.send_at, emails.customer_id, emails.id LIMIT ?"
)
CLAIM = "UPDATE emails SET status = ?, lease_owner = ?, lease_until = ?, updated_at = ? WHERE "


class Claiming:
    """Taking due emails to send, and giving back what a stopped sender held: the claiming
    half of `Sending`, which adds the writes that follow a claim."""

    engine: Engine
    is_postgres: bool

    def claim_due(self, now: datetime, owner: str, lease: timedelta, limit: int) -> list[Claimed]:
        """Take up to `limit` planned emails due by `now` (earliest first) as `owner`, until
        `now + lease`; their members are marked in flight.

        Through `Driver` (see `dispatch_writing`): a claim reads every column a chunk's
        rendering needs."""
        if limit <= 0:
            return []
        with self.engine.begin() as conn:
            db = Driver(conn)
            t = db.time
            due = DUE.format(true="true" if db.postgres else "1")
            due_args = [EmailStatus.PLANNED.value, t(now), t(now), t(now - ON_PLAN_GRACE), limit]
            claim = [
                EmailStatus.CLAIMED.value,
                owner,
                t(now + lease),
                t(now),
            ]
            returning = f" RETURNING {', '.join(EMAIL)}"
            if db.postgres:
                # lock the candidates first, skipping rows another daemon holds: the locks
                # last until commit. (Not as a sub-select of the UPDATE: PostgreSQL may run
                # that more than once and take more than `limit` rows.)
                picked = [i for (i,) in db.fetch(due + " FOR UPDATE SKIP LOCKED", due_args)]
                if not picked:
                    return []
                where, params = db.in_ids("id", picked)
                rows = db.rows(
                    emails,
                    EMAIL,
                    CLAIM + where + " AND status = ?" + returning,
                    [*claim, *params, EmailStatus.PLANNED.value],
                )
            else:
                # one statement: SQLite's write lock covers it, so the sub-select's `planned`
                # still holds when the row is written. Checking it again in the outer WHERE
                # made SQLite walk every planned email (index on status) instead of the ids
                # (primary key): an idle tick then grew with the ledger
                rows = db.rows(
                    emails, EMAIL, f"{CLAIM}id IN ({due}){returning}", [*claim, *due_args]
                )
            # in the claim's order (DUE)
            claimed = sorted(
                rows,
                key=lambda r: (not r["transactional"], r["send_at"], r["customer_id"], r["id"]),
            )
            if not claimed:
                return []
            claimed, members = self._take_members(conn, db, claimed)
            if not claimed:
                return []
            custs = {}
            for part in chunks(sorted({r["customer_id"] for r in claimed})):
                where, params = db.in_ids("id", part)
                for r in db.select(customers, columns.CUSTOMER, where, params):
                    custs[r["id"]] = convert.customer(r)
        return [
            Claimed(
                convert.email(r),
                custs[r["customer_id"]],
                tuple(members[m] for m in r["members"]),
                r["attempts"],
            )
            for r in claimed
        ]

    def _take_members(
        self, conn: Connection, db: Driver, claimed: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], dict[str, Message]]:
        """Mark the claimed emails' members in flight; drop (delete) every email one of whose
        members is already in flight or settled, or is taken by an earlier email of this
        batch, and give back what such an email had taken."""
        wanted = sorted({m for r in claimed for m in r["members"]})
        if db.postgres:
            # lock the rows in one order, so two daemons taking overlapping sets cannot
            # deadlock; the UPDATE below re-checks each row once it holds the lock
            for part in chunks(wanted):
                where, params = db.in_ids("id", part)
                db.fetch(f"SELECT id FROM messages WHERE {where} ORDER BY id FOR UPDATE", params)
        taken: dict[str, Message] = {}
        for part in chunks(wanted):
            where, params = db.in_ids("id", part)
            rows = db.rows(
                messages,
                columns.MESSAGE,
                f"UPDATE messages SET in_flight = ? WHERE {where} AND in_flight = ? "
                f"AND final = ? RETURNING {', '.join(columns.MESSAGE)}",
                [True, *params, False, False],
            )
            taken.update({r["id"]: convert.message(r) for r in rows})
        keep: list[dict[str, Any]] = []
        stale: list[dict[str, Any]] = []
        used: set[str] = set()
        for r in claimed:
            mine = set(r["members"])
            if r["members"] and mine <= taken.keys() and not mine & used:
                keep.append(r)
                used |= mine
            else:
                stale.append(r)
        if stale:  # seldom: through SQLAlchemy, in the same transaction
            conn.execute(delete(emails).where(emails.c.id.in_([r["id"] for r in stale])))
            give_back = sorted(taken.keys() - used)
            for part in chunks(give_back):
                conn.execute(
                    update(messages).where(messages.c.id.in_(part)).values(in_flight=False)
                )
            mark_dirty(conn, {r["customer_id"] for r in stale})
        return keep, {m: taken[m] for m in used}

    def release(self, email_id: str) -> None:
        """Give a claim back untouched (nothing was handed to the transport): `claimed` ->
        `planned`, members no longer in flight. An email no longer `claimed` (already
        sending, sent, recovered) is left as it is."""
        with self.engine.begin() as conn:
            self._release(conn, [email_id])

    def _release(self, conn: Connection, ids: Sequence[str], now: datetime | None = None) -> int:
        """`claimed` -> `planned` for these ids (only those whose lease ran out by `now`, if
        given); returns how many."""
        rows: list[Any] = []
        for part in chunks(list(ids)):
            query = update(emails).where(
                emails.c.id.in_(part), emails.c.status == EmailStatus.CLAIMED
            )
            if now is not None:
                query = query.where(emails.c.lease_until < now)
            rows += conn.execute(
                query.values(
                    status=EmailStatus.PLANNED, lease_owner=None, lease_until=None
                ).returning(emails.c.members, emails.c.customer_id, emails.c.send_at)
            ).all()
        members = sorted({m for r in rows for m in r.members})
        for part in chunks(members):
            conn.execute(update(messages).where(messages.c.id.in_(part)).values(in_flight=False))
        if rows:
            # the plans stand (nothing left): looked at again, the emails claimable meanwhile
            look_again(Driver(conn), {r.customer_id for r in rows}, min(r.send_at for r in rows))
        return len(rows)
