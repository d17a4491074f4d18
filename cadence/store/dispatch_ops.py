"""Claiming due emails under a lease and recording what happened to them.

The status goes `planned -> claimed -> sending -> sent|failed`, written before and after the
transport call. A lease that runs out sends a `claimed` email back to `planned` (nothing had
left) and turns a `sending` one `unconfirmed` (something may have left): never sent again
without a provider event or an operator saying so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, insert, or_, select, update

from cadence.model import Customer, Email, Message, Status
from cadence.store import convert
from cadence.store.tables import customers, decisions, emails, messages

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine


@dataclass(frozen=True, slots=True)
class Claimed:
    email: Email
    customer: Customer
    members: tuple[Message, ...]
    attempts: int = 0  # earlier transport calls for this email (temporary failures)


class DispatchOps:
    engine: Engine
    is_postgres: bool

    if TYPE_CHECKING:  # provided by Store

        def _mark_dirty(self, conn: Connection, ids: Any) -> None: ...

        def _touch_contact(
            self, conn: Connection, sent: Sequence[Message], at: datetime | None = None
        ) -> None: ...

    def claim_due(self, now: datetime, owner: str, lease: timedelta, limit: int) -> list[Claimed]:
        with self.engine.begin() as conn:
            query = (
                select(emails.c.id)
                .where(emails.c.status == "planned", emails.c.send_at <= now)
                .order_by(emails.c.send_at, emails.c.id)
                .limit(limit)
            )
            if self.is_postgres:
                query = query.with_for_update(skip_locked=True)
            ids = list(conn.scalars(query))
            if not ids:
                return []
            ids = self._still_valid(conn, ids)
            if not ids:
                return []
            conn.execute(
                update(emails)
                .where(emails.c.id.in_(ids), emails.c.status == "planned")
                .values(
                    status="claimed",
                    lease_owner=owner,
                    lease_until=now + lease,
                    updated_at=now,
                )
            )
            rows = conn.execute(select(emails).where(emails.c.id.in_(ids))).mappings().all()
            member_ids = sorted({i for r in rows for i in r["members"]})
            conn.execute(
                update(messages).where(messages.c.id.in_(member_ids)).values(in_flight=True)
            )
            members = {
                r["id"]: convert.message(r)
                for r in conn.execute(
                    select(messages).where(messages.c.id.in_(member_ids))
                ).mappings()
            }
            custs = {
                r["id"]: convert.customer(r)
                for r in conn.execute(
                    select(customers).where(customers.c.id.in_({r["customer_id"] for r in rows}))
                ).mappings()
            }
        by_id = {r["id"]: r for r in rows}
        return [
            Claimed(
                convert.email(by_id[i]),
                custs[by_id[i]["customer_id"]],
                tuple(members[m] for m in by_id[i]["members"] if m in members),
                by_id[i]["attempts"],
            )
            for i in ids
        ]

    def _still_valid(self, conn: Connection, ids: list[str]) -> list[str]:
        """The last line of defence when several daemons run: an email one of whose messages
        is already in flight or settled (another daemon's plan got there first) is dropped
        and its customer planned again, never sent."""
        rows = conn.execute(
            select(emails.c.id, emails.c.members, emails.c.customer_id).where(emails.c.id.in_(ids))
        ).all()
        member_ids = sorted({m for r in rows for m in r.members})
        busy = set(
            conn.scalars(
                select(messages.c.id).where(
                    messages.c.id.in_(member_ids),
                    or_(messages.c.in_flight.is_(True), messages.c.final.is_(True)),
                )
            )
        )
        stale = [r for r in rows if busy & set(r.members)]
        if stale:
            conn.execute(delete(emails).where(emails.c.id.in_([r.id for r in stale])))
            self._mark_dirty(conn, {r.customer_id for r in stale})
        keep = {r.id for r in rows} - {r.id for r in stale}
        return [i for i in ids if i in keep]

    def mark_sending(self, email_id: str, owner: str, now: datetime | None = None) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                update(emails)
                .where(
                    emails.c.id == email_id,
                    emails.c.status == "claimed",
                    emails.c.lease_owner == owner,
                )
                .values(status="sending", attempts=emails.c.attempts + 1)
            )
            return bool(result.rowcount == 1)

    def _settle_members(
        self,
        conn: Connection,
        email_id: str,
        status: Status,
        reason: str,
        at: datetime,
        *,
        sent_at: datetime | None = None,
    ) -> list[Message]:
        return self._settle_many(conn, [email_id], status, lambda _: reason, at, sent_at=sent_at)

    def _settle_many(
        self,
        conn: Connection,
        email_ids: Sequence[str],
        status: Status,
        reason: Callable[[str], str],
        at: datetime,
        *,
        sent_at: datetime | None = None,
    ) -> list[Message]:
        """The members of these emails take the emails' fate, in a handful of statements."""
        rows = conn.execute(
            select(emails.c.id, emails.c.members, emails.c.customer_id).where(
                emails.c.id.in_(email_ids)
            )
        ).all()
        email_of = {m: r.id for r in rows for m in r.members}
        members = (
            conn.execute(select(messages).where(messages.c.id.in_(list(email_of)))).mappings().all()
        )
        if not members:
            return []
        extra = {"m_sent_at": sent_at} if sent_at else {}
        conn.execute(
            update(messages)
            .where(messages.c.id == bindparam("m_id"))
            .values(
                status=str(status),
                reason=bindparam("m_reason"),
                final=True,
                in_flight=False,
                decided_at=at,
                **({"sent_at": bindparam("m_sent_at")} if sent_at else {}),
            ),
            [{"m_id": m["id"], "m_reason": reason(email_of[m["id"]]), **extra} for m in members],
        )
        conn.execute(
            insert(decisions),
            [
                {
                    "message_id": m["id"],
                    "customer_id": m["customer_id"],
                    "decided_at": at,
                    "status": str(status),
                    "send_at": m["send_at"],
                    "email_id": email_of[m["id"]],
                    "rule": m["rule"],
                    "reason": reason(email_of[m["id"]]),
                    "details": m["details"] or {},
                    "rules_version": m["rules_version"],
                }
                for m in members
            ],
        )
        self._mark_dirty(conn, {r.customer_id for r in rows})
        return [convert.message(m) for m in members]

    def mark_sending_many(self, email_ids: Sequence[str], owner: str) -> set[str]:
        """Mark a chunk `sending` in one write; returns the ids still ours (leases held)."""
        if not email_ids:
            return set()
        with self.engine.begin() as conn:
            conn.execute(
                update(emails)
                .where(
                    emails.c.id.in_(email_ids),
                    emails.c.status == "claimed",
                    emails.c.lease_owner == owner,
                )
                .values(status="sending", attempts=emails.c.attempts + 1)
            )
            return set(
                conn.scalars(
                    select(emails.c.id).where(
                        emails.c.id.in_(email_ids),
                        emails.c.status == "sending",
                        emails.c.lease_owner == owner,
                    )
                )
            )

    def mark_sent_many(self, sent: Sequence[tuple[str, str | None]], at: datetime) -> None:
        """Record a chunk of accepted emails (id, provider id) and their messages, in one write."""
        if not sent:
            return
        with self.engine.begin() as conn:
            conn.execute(
                update(emails)
                .where(emails.c.id == bindparam("e_id"))
                .values(
                    status="sent",
                    sent_at=at,
                    provider_id=bindparam("e_provider"),
                    updated_at=at,
                    lease_owner=None,
                ),
                [{"e_id": i, "e_provider": p} for i, p in sent],
            )
            members = self._settle_many(
                conn, [i for i, _ in sent], Status.SENT, lambda e: f"sent in {e}", at, sent_at=at
            )
            self._touch_contact(conn, members, at)

    def mark_sent(self, email_id: str, at: datetime, provider_id: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(emails)
                .where(emails.c.id == email_id)
                .values(
                    status="sent",
                    sent_at=at,
                    provider_id=provider_id,
                    updated_at=at,
                    lease_owner=None,
                )
            )
            members = self._settle_members(
                conn, email_id, Status.SENT, f"sent in {email_id}", at, sent_at=at
            )
            self._touch_contact(conn, members, at)

    def mark_failed(self, email_id: str, error: str, at: datetime | None = None) -> None:
        from cadence.clock import utcnow

        self._close(email_id, "failed", Status.FAILED, error, f"failed: {error}", at or utcnow())

    def mark_unconfirmed(self, email_id: str, reason: str, at: datetime) -> None:
        self._close(
            email_id, "unconfirmed", Status.UNCONFIRMED, reason, f"unconfirmed: {reason}", at
        )

    def _close(
        self,
        email_id: str,
        email_status: str,
        status: Status,
        error: str,
        reason: str,
        at: datetime,
    ) -> None:
        """An email ends without a send we can vouch for; its messages take the same fate."""
        with self.engine.begin() as conn:
            conn.execute(
                update(emails)
                .where(emails.c.id == email_id)
                .values(status=email_status, error=error, updated_at=at, lease_owner=None)
            )
            self._settle_members(conn, email_id, status, reason, at)

    def retry_later(self, email_id: str, at: datetime, reason: str) -> None:
        """A temporary failure: the claim stays, without an owner, until `at`; then the lease
        recovery returns it to `planned` and the next plan places it again."""
        with self.engine.begin() as conn:
            conn.execute(
                update(emails)
                .where(emails.c.id == email_id)
                .values(status="claimed", lease_owner=None, lease_until=at, error=reason)
            )

    def release(self, email_id: str) -> None:
        with self.engine.begin() as conn:
            row = (
                conn.execute(select(emails).where(emails.c.id == email_id)).mappings().one_or_none()
            )
            if row is None:
                return
            conn.execute(
                update(emails)
                .where(emails.c.id == email_id, emails.c.status == "claimed")
                .values(status="planned", lease_owner=None, lease_until=None)
            )
            conn.execute(
                update(messages).where(messages.c.id.in_(row["members"])).values(in_flight=False)
            )
            self._mark_dirty(conn, {row["customer_id"]})

    def hold_email(self, email_id: str, reason: str, at: datetime | None = None) -> None:
        """Rendering failed: nothing went; the members wait, with the error, for a fix."""
        from cadence.clock import utcnow

        at = at or utcnow()
        with self.engine.begin() as conn:
            self._settle_members(conn, email_id, Status.HELD, reason, at)
            conn.execute(delete(emails).where(emails.c.id == email_id))

    def release_held(self) -> int:
        """Rules or templates changed: held messages get planned again."""
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(messages.c.id, messages.c.customer_id).where(
                    messages.c.status == str(Status.HELD), messages.c.final.is_(True)
                )
            ).all()
            if rows:
                conn.execute(
                    update(messages)
                    .where(messages.c.id.in_([r.id for r in rows]))
                    .values(final=False)
                )
                self._mark_dirty(conn, {r.customer_id for r in rows})
            return len(rows)

    def recover_leases(self, now: datetime) -> tuple[int, int]:
        with self.engine.begin() as conn:
            expired = conn.execute(
                select(emails.c.id, emails.c.status, emails.c.members, emails.c.customer_id).where(
                    emails.c.status.in_(("claimed", "sending")), emails.c.lease_until < now
                )
            ).all()
        released = unconfirmed = 0
        for row in expired:
            if row.status == "claimed":
                self.release(row.id)
                released += 1
            else:
                self.mark_unconfirmed(
                    row.id,
                    "the daemon stopped while handing it to the transport; a provider "
                    "event or `cadence emails settle` must say whether it went",
                    now,
                )
                unconfirmed += 1
        return released, unconfirmed

    def unconfirmed_emails(self) -> list[tuple[Email, str | None]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(emails).where(emails.c.status == "unconfirmed").order_by(emails.c.send_at)
            ).mappings()
            return [(convert.email(r), r["error"]) for r in rows]

    def settle_email(self, email_id: str, sent: bool, by: str, at: datetime | None = None) -> bool:
        """An `unconfirmed` email settled by a provider event or an operator. Not sent: its
        messages are planned again (a new send, decided by the rules, not a blind retry)."""
        from cadence.clock import utcnow

        at = at or utcnow()
        with self.engine.begin() as conn:
            row = (
                conn.execute(
                    select(emails).where(emails.c.id == email_id, emails.c.status == "unconfirmed")
                )
                .mappings()
                .one_or_none()
            )
            if row is None:
                return False
            if sent:
                conn.execute(
                    update(emails)
                    .where(emails.c.id == email_id)
                    .values(status="sent", sent_at=row["send_at"], error=None, updated_at=at)
                )
                members = self._settle_members(
                    conn,
                    email_id,
                    Status.SENT,
                    f"sent in {email_id} (settled by {by})",
                    at,
                    sent_at=row["send_at"],
                )
                self._touch_contact(conn, members, row["send_at"])
            else:
                conn.execute(
                    update(messages)
                    .where(messages.c.id.in_(row["members"]))
                    .values(
                        status=str(Status.SCHEDULED),
                        reason=f"not sent (settled by {by}): planned again",
                        final=False,
                        in_flight=False,
                        email_id=None,
                    )
                )
                conn.execute(delete(emails).where(emails.c.id == email_id))
                self._mark_dirty(conn, {row["customer_id"]})
            return True
