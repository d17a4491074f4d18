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

from sqlalchemy import and_, delete, or_, select, true, update

from cadence.model import Customer, Email, Message
from cadence.store import convert
from cadence.store.common import chunks, look_again, mark_dirty
from cadence.store.tables import customers, emails, messages

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


class ClaimOps:
    engine: Engine
    is_postgres: bool

    def claim_due(self, now: datetime, owner: str, lease: timedelta, limit: int) -> list[Claimed]:
        """Take up to `limit` planned emails due by `now` (earliest first) as `owner`, until
        `now + lease`; their members are marked in flight."""
        if limit <= 0:
            return []
        with self.engine.begin() as conn:
            # An email goes on its plan only while that plan is current: a daemon busy with a
            # burst sends before it has planned everyone again. Not for a customer marked
            # dirty (an unsubscribe, a cancel, new mail since the plan may change this email
            # too), and not late by more than ON_PLAN_GRACE while the customer waits for a
            # new plan (its window may have closed, its message expired: the planner wakes
            # every customer at its emails' times, so the new plan comes)
            stale_plan = (
                select(customers.c.id)
                .where(
                    customers.c.id == emails.c.customer_id,
                    or_(
                        customers.c.dirty == true(),
                        and_(
                            customers.c.next_plan_at <= now,
                            emails.c.send_at < now - ON_PLAN_GRACE,
                        ),
                    ),
                )
                .exists()
            )
            due = (
                select(emails.c.id)
                .where(emails.c.status == "planned", emails.c.send_at <= now, ~stale_plan)
                # receipts and ticket replies before the backlog of proactive mail
                .order_by(emails.c.transactional.desc(), emails.c.send_at, emails.c.id)
                .limit(limit)
            )
            if self.is_postgres:
                # lock the candidates first, skipping rows another daemon holds: the locks
                # last until commit. (Not as a sub-select of the UPDATE: PostgreSQL may run
                # that more than once and take more than `limit` rows.)
                picked: Any = list(conn.scalars(due.with_for_update(skip_locked=True)))
                still_planned: Any = emails.c.status == "planned"
            else:
                # one statement: SQLite's write lock covers it, so the sub-select's `planned`
                # still holds when the row is written. Checking it again in the outer WHERE
                # made SQLite walk every planned email (index on status) instead of the ids
                # (primary key): an idle tick then grew with the ledger
                picked = due.scalar_subquery()
                still_planned = true()
            rows = conn.execute(
                update(emails)
                .where(emails.c.id.in_(picked), still_planned)
                .values(
                    status="claimed", lease_owner=owner, lease_until=now + lease, updated_at=now
                )
                .returning(*emails.c)
            ).mappings()
            claimed = sorted(
                (dict(r) for r in rows),
                key=lambda r: (not r["transactional"], r["send_at"], r["id"]),
            )
            if not claimed:
                return []
            claimed, members = self._take_members(conn, claimed)
            if not claimed:
                return []
            owners = {r["customer_id"] for r in claimed}
            custs = {
                r["id"]: convert.customer(r)
                for r in conn.execute(
                    select(customers).where(customers.c.id.in_(sorted(owners)))
                ).mappings()
            }
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
        self, conn: Connection, claimed: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], dict[str, Message]]:
        """Mark the claimed emails' members in flight; drop (delete) every email one of whose
        members is already in flight or settled, or is taken by an earlier email of this
        batch, and give back what such an email had taken."""
        wanted = sorted({m for r in claimed for m in r["members"]})
        if self.is_postgres:
            # lock the rows in one order, so two daemons taking overlapping sets cannot
            # deadlock; the UPDATE below re-checks each row once it holds the lock
            for part in chunks(wanted):
                conn.execute(
                    select(messages.c.id)
                    .where(messages.c.id.in_(part))
                    .order_by(messages.c.id)
                    .with_for_update()
                )
        taken: dict[str, Message] = {}
        for part in chunks(wanted):
            rows = conn.execute(
                update(messages)
                .where(
                    messages.c.id.in_(part),
                    messages.c.in_flight.is_(False),
                    messages.c.final.is_(False),
                )
                .values(in_flight=True)
                .returning(*messages.c)
            ).mappings()
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
        if stale:
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
            query = update(emails).where(emails.c.id.in_(part), emails.c.status == "claimed")
            if now is not None:
                query = query.where(emails.c.lease_until < now)
            rows += conn.execute(
                query.values(status="planned", lease_owner=None, lease_until=None).returning(
                    emails.c.members, emails.c.customer_id, emails.c.send_at
                )
            ).all()
        members = sorted({m for r in rows for m in r.members})
        for part in chunks(members):
            conn.execute(update(messages).where(messages.c.id.in_(part)).values(in_flight=False))
        if rows:
            # the plans stand (nothing left): looked at again, the emails claimable meanwhile
            look_again(conn, {r.customer_id for r in rows}, min(r.send_at for r in rows))
        return len(rows)
