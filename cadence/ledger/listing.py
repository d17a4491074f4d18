"""Listing the ledger for people and tools: every message that matches a filter, newest first
(`cadence ledger`), and every customer's planned emails in a horizon (`cadence upcoming`).
One query each, filters and order in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select, type_coerce

from cadence.ledger import convert
from cadence.ledger.statements import chunks
from cadence.ledger.tables import UTCDateTime, customers, emails, messages
from cadence.model import PLANNED, Email, EmailStatus, Status

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Engine

#: statuses whose time is when the message went (or, for a touch planned elsewhere, will go)
_WENT = (Status.SENT, Status.RECORDED, Status.UNCONFIRMED, Status.FAILED)


@dataclass(frozen=True, slots=True)
class LedgerFilter:
    """What `Listing.entries` selects; None matches anything. `limit` 0: no limit."""

    customer: str | None = None
    account: str | None = None
    role: str | None = None
    category: str | None = None
    channel: str | None = None
    status: Status | None = None
    since: datetime | None = None  # `at` at or after
    until: datetime | None = None  # `at` before
    limit: int = 200


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A message as the ledger lists it: its current decision, and `at`, the time that
    matters for its status (sent or recorded: when it went; planned: when it goes; else when
    it was decided)."""

    customer: str
    message: str
    role: str
    category: str | None
    topic: str | None
    channel: str
    status: Status
    at: datetime | None
    email: str | None
    rule: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class PlannedEmail:
    """A planned email, its customer's own time zone (None: the default), and its subject
    when the ledger knows it (a single message with its own subject; a template's or a
    digest's subject is only known once rendered)."""

    email: Email
    timezone: str | None
    subject: str | None
    #: a single message's template, whose rendering gives the subject (None otherwise)
    template: str | None = None


def entry_time() -> ColumnElement[Any]:
    """`LedgerEntry.at` in SQL, so the ledger filters and orders on it."""
    m = messages.c
    when = case(
        (m.status.in_([str(s) for s in _WENT]), func.coalesce(m.sent_at, m.send_at, m.decided_at)),
        (m.status.in_([str(s) for s in PLANNED]), func.coalesce(m.send_at, m.send_after)),
        else_=func.coalesce(m.decided_at, m.send_at, m.send_after),
    )
    return type_coerce(func.coalesce(when, m.created_at), UTCDateTime())


class Listing:
    def __init__(self, engine: Engine, is_postgres: bool) -> None:
        self.engine, self.is_postgres = engine, is_postgres

    def entries(self, f: LedgerFilter) -> list[LedgerEntry]:
        """The messages `f` selects, newest `at` first (then by id), at most `f.limit`."""
        m = messages.c
        at = entry_time().label("at")
        query = select(
            m.customer_id,
            m.id,
            m.role,
            m.category,
            m.topic,
            m.channel,
            m.status,
            at,
            m.email_id,
            m.rule,
            m.reason,
        )
        for column, value in (
            (m.customer_id, f.customer),
            (m.role, f.role),
            (m.category, f.category),
            (m.channel, f.channel),
            (m.status, None if f.status is None else str(f.status)),
        ):
            if value is not None:
                query = query.where(column == value)
        if f.account is not None:
            query = query.where(
                m.customer_id.in_(select(customers.c.id).where(customers.c.account == f.account))
            )
        if f.since is not None:
            query = query.where(at >= f.since)
        if f.until is not None:
            query = query.where(at < f.until)
        query = query.order_by(at.desc(), m.id)
        if f.limit:
            query = query.limit(f.limit)
        with self.engine.connect() as conn:
            return [
                LedgerEntry(
                    customer=r.customer_id,
                    message=r.id,
                    role=r.role,
                    category=r.category,
                    topic=r.topic,
                    channel=r.channel,
                    status=Status(r.status),
                    at=r.at,
                    email=r.email_id,
                    rule=r.rule,
                    reason=r.reason,
                )
                for r in conn.execute(query)
            ]

    def planned_emails(
        self,
        start: datetime,
        end: datetime,
        role: str | None = None,
        category: str | None = None,
    ) -> list[PlannedEmail]:
        """Every customer's planned emails going out from `start` until `end`, soonest first
        (then by id)."""
        e = emails.c
        query = (
            select(emails, customers.c.timezone.label("customer_timezone"))
            .join(customers, customers.c.id == e.customer_id)
            .where(e.status == str(EmailStatus.PLANNED), e.send_at >= start, e.send_at < end)
            .order_by(e.send_at, e.id)
        )
        if role is not None:
            query = query.where(e.role == role)
        if category is not None:
            query = query.where(e.category == category)
        with self.engine.connect() as conn:
            rows = [
                (convert.email(r), r["customer_timezone"]) for r in conn.execute(query).mappings()
            ]
            singles = [em.members[0] for em, _ in rows if len(em.members) == 1]
            subjects: dict[str, str] = {}
            templates: dict[str, str] = {}
            m = messages.c
            for part in chunks(singles):
                own = select(m.id, m.subject, m.body_text, m.template).where(m.id.in_(part))
                for r in conn.execute(own):
                    if r.subject is not None and r.body_text is not None:
                        subjects[r.id] = r.subject
                    elif r.template is not None:
                        templates[r.id] = r.template
        out = []
        for em, tz in rows:
            single = em.members[0] if len(em.members) == 1 else ""
            out.append(PlannedEmail(em, tz, subjects.get(single), templates.get(single)))
        return out
