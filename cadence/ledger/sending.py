"""Claiming due emails under a lease and recording what happened to them.

The status goes `planned -> claimed -> sending -> sent|failed`, written before and after the
transport call. A lease that runs out sends a `claimed` email back to `planned` (nothing had
left) and turns a `sending` one `unconfirmed` (something may have left): never sent again
without a provider event or an operator saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update

from cadence.ledger import convert
from cadence.ledger.attention import mark_dirty
from cadence.ledger.claims import Claimed, Claiming
from cadence.ledger.dispatch_writing import mark_sending, record_sent, settle
from cadence.ledger.driver import Driver
from cadence.ledger.tables import emails, messages
from cadence.model import Email, EmailStatus, Status

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine


__all__ = ["Claimed", "Sending"]

UNCONFIRMED_REASON = (
    "the daemon stopped while handing it to the transport; a provider event or "
    "`cadence emails settle` must say whether it went"
)


class Sending(Claiming):
    """Due emails claimed, and what became of each: sent, failed, unconfirmed, held, retried,
    settled; leases that ran out."""

    def __init__(self, engine: Engine, is_postgres: bool) -> None:
        self.engine, self.is_postgres = engine, is_postgres

    def mark_sending_many(
        self, email_ids: Sequence[str], owner: str, now: datetime | None = None
    ) -> set[str]:
        """Mark a chunk `sending` in one write; returns the ids still ours (claimed by
        `owner`, and with `now` given, leases not run out). Only those may be handed over."""
        return self.mark_sent_and_sending([], now, email_ids, owner) if email_ids else set()

    def mark_sent_many(self, sent: Sequence[tuple[str, str | None]], at: datetime) -> None:
        """Record a chunk of accepted emails (id, provider id) and their messages, in one write."""
        if sent:
            self.mark_sent_and_sending(sent, at, [], "")

    def mark_sent_and_sending(
        self,
        sent: Sequence[tuple[str, str | None]],
        at: datetime | None,
        sending: Sequence[str],
        owner: str,
    ) -> set[str]:
        """In one transaction: record emails the transport took (id, provider id) at `at`,
        and mark the next chunk `sending` (`mark_sending_many`, its lease checked at `at`);
        returns the ids of that chunk still ours. One commit for both, where the dispatcher
        made two (a commit is most of a small transaction's cost on either database)."""
        with self.engine.begin() as conn:
            db = Driver(conn)
            if sent:
                assert at is not None, "a time to record the sent emails at"
                record_sent(db, sent, at)
            return mark_sending(db, sending, owner, at) if sending else set()

    def mark_failed(self, email_id: str, error: str, at: datetime) -> None:
        self._close(email_id, EmailStatus.FAILED, Status.FAILED, error, f"failed: {error}", at)

    def mark_unconfirmed(self, email_id: str, reason: str, at: datetime) -> None:
        self._close(
            email_id,
            EmailStatus.UNCONFIRMED,
            Status.UNCONFIRMED,
            reason,
            f"unconfirmed: {reason}",
            at,
        )

    def expire_email(self, email_id: str, reason: str, at: datetime) -> None:
        """A retry would come too late: nothing went, and the members expire with `reason`."""
        self._close(email_id, EmailStatus.FAILED, Status.EXPIRED, reason, reason, at)

    def _close(
        self,
        email_id: str,
        email_status: EmailStatus,
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
            settle(Driver(conn), [email_id], status, lambda _: reason, at)

    def retry_later(self, email_id: str, at: datetime, reason: str) -> None:
        """A temporary failure: the claim stays, without an owner, until `at`; then the lease
        recovery returns it to `planned` and the next plan places it again."""
        with self.engine.begin() as conn:
            conn.execute(
                update(emails)
                .where(emails.c.id == email_id)
                .values(status=EmailStatus.CLAIMED, lease_owner=None, lease_until=at, error=reason)
            )

    def hold_email(self, email_id: str, reason: str, *, now: datetime) -> None:
        """Rendering failed: nothing went; the members wait, with the error, for a fix."""
        with self.engine.begin() as conn:
            settle(Driver(conn), [email_id], Status.HELD, lambda _: reason, now)
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
                mark_dirty(conn, {r.customer_id for r in rows})
            return len(rows)

    def recover_leases(self, now: datetime) -> tuple[int, int]:
        """Leases that ran out by `now`: `claimed` goes back to `planned` (nothing had left);
        `sending` becomes `unconfirmed` (something may have left) and is never sent again
        without a provider event or an operator. Returns (released, unconfirmed). Each
        change is a conditional UPDATE, so an email its daemon settles at the same moment
        keeps that daemon's outcome."""
        with self.engine.connect() as conn:
            # most passes find none: a read, not a write transaction, says so (through the
            # driver: every pass asks)
            db = Driver(conn)
            ran_out = db.fetch(
                "SELECT id FROM emails WHERE status IN (?, ?) AND lease_until < ? LIMIT 1",
                [EmailStatus.CLAIMED.value, EmailStatus.SENDING.value, db.time(now)],
            )
        if not ran_out:
            return 0, 0
        with self.engine.begin() as conn:
            expired = list(
                conn.scalars(
                    select(emails.c.id).where(
                        emails.c.status == EmailStatus.CLAIMED, emails.c.lease_until < now
                    )
                )
            )
            released = self._release(conn, expired, now)
            lost = list(
                conn.scalars(
                    update(emails)
                    .where(emails.c.status == EmailStatus.SENDING, emails.c.lease_until < now)
                    .values(
                        status=EmailStatus.UNCONFIRMED,
                        error=UNCONFIRMED_REASON,
                        updated_at=now,
                        lease_owner=None,
                    )
                    .returning(emails.c.id)
                )
            )
            if lost:
                settle(
                    Driver(conn),
                    lost,
                    Status.UNCONFIRMED,
                    lambda _: f"unconfirmed: {UNCONFIRMED_REASON}",
                    now,
                )
        return released, len(lost)

    def unconfirmed_emails(
        self,
        *,
        customer: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[tuple[Email, str | None]]:
        """The `unconfirmed` emails, earliest first, with why each is; only a customer's,
        and only those that became unconfirmed in [since, until), when given."""
        query = select(emails).where(emails.c.status == EmailStatus.UNCONFIRMED)
        if customer is not None:
            query = query.where(emails.c.customer_id == customer)
        if since is not None:
            query = query.where(emails.c.updated_at >= since)
        if until is not None:
            query = query.where(emails.c.updated_at < until)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(emails.c.send_at, emails.c.id)).mappings()
            return [(convert.email(r), r["error"]) for r in rows]

    def settle_emails(
        self, email_ids: Sequence[str], sent: bool, by: str, at: datetime
    ) -> list[str]:
        """Settle many `unconfirmed` emails at once, in one transaction (`settle_email` for
        each); returns those that were unconfirmed and are now settled, in the order given."""
        with self.engine.begin() as conn:
            return [i for i in dict.fromkeys(email_ids) if self._settle_one(conn, i, sent, by, at)]

    def settle_email(self, email_id: str, sent: bool, by: str, at: datetime) -> bool:
        """An `unconfirmed` email settled by a provider event or an operator, at `at`. Not
        sent: its messages are planned again (a new send, decided by the rules, not a blind
        retry). False when the email is not unconfirmed (unknown, or settled already)."""
        with self.engine.begin() as conn:
            return self._settle_one(conn, email_id, sent, by, at)

    def fail_unconfirmed(self, email_id: str, reason: str, at: datetime) -> bool:
        """An `unconfirmed` email the provider will not deliver (SendGrid's `dropped`): it
        fails with `reason`, and its messages are not planned again. False, and nothing
        changed, when it is no longer unconfirmed (someone settled it first)."""
        with self.engine.begin() as conn:
            closed = conn.execute(
                update(emails)
                .where(emails.c.id == email_id, emails.c.status == EmailStatus.UNCONFIRMED)
                .values(status=EmailStatus.FAILED, error=reason, updated_at=at, lease_owner=None)
                .returning(emails.c.id)
            ).first()
            if closed is None:
                return False
            settle(Driver(conn), [email_id], Status.FAILED, lambda _: f"failed: {reason}", at)
            return True

    def _settle_one(
        self, conn: Connection, email_id: str, sent: bool, by: str, at: datetime
    ) -> bool:
        row = (
            conn.execute(
                select(emails).where(
                    emails.c.id == email_id, emails.c.status == EmailStatus.UNCONFIRMED
                )
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
                .values(status=EmailStatus.SENT, sent_at=row["send_at"], error=None, updated_at=at)
            )
            settle(
                Driver(conn),
                [email_id],
                Status.SENT,
                lambda _: f"sent in {email_id} (settled by {by})",
                at,
                sent_at=row["send_at"],
            )
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
            mark_dirty(conn, {row["customer_id"]})
        return True
