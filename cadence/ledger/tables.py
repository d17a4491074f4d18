"""The ledger's tables (SQLModel). Queries use SQLAlchemy Core on these tables, in bulk; the
classes are the schema, which the Alembic migrations must build exactly (a test checks)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out, on SQLite (which keeps no zone) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} reached the store: a bug upstream")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _json(default: Any = None) -> Any:
    if default is None:
        return Field(default=None, sa_type=JSON, nullable=True)
    return Field(default_factory=default, sa_type=JSON, nullable=False)


def _time(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


class CustomerRow(SQLModel, table=True):
    __tablename__ = "customers"

    id: str = Field(primary_key=True)
    email: str
    name: str
    timezone: str | None = None
    account: str | None = Field(default=None, index=True)
    attributes: dict[str, Any] = _json(dict)
    attributes_at: datetime | None = _time()
    created_at: datetime = _time(nullable=False)
    updated_at: datetime = _time(nullable=False)
    digest: str
    unsubscribed_all: bool = False
    unsubscribed_categories: list[str] = _json(list)
    hard_bounced: bool = False
    soft_bounces: int = 0
    spam_reported: bool = False
    max_per_week: int | None = None  # the customer's own cap (preferences_changed)
    last_contact: dict[str, str] = _json(dict)
    engagement: dict[str, Any] | None = _json()  # convert.engagement_values; NULL: none yet
    dirty: bool = Field(default=True, index=True)
    next_plan_at: datetime | None = _time(index=True)


#: transactional mail that no plan has decided yet (a new message has no rules_version): its
#: customer is planned first, and the daemon looks for it several times a second (see 0004).
#: A query uses the partial index only if its WHERE repeats these terms as written here.
UNPLANNED_TRANSACTIONAL = {
    "sqlite": "transactional = 1 AND final = 0 AND rules_version IS NULL",
    "postgresql": "transactional = true AND final = false AND rules_version IS NULL",
}


class MessageRow(SQLModel, table=True):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_customer_final", "customer_id", "final"),
        Index(
            "ix_messages_unplanned_transactional",
            "customer_id",
            sqlite_where=text(UNPLANNED_TRANSACTIONAL["sqlite"]),
            postgresql_where=text(UNPLANNED_TRANSACTIONAL["postgresql"]),
        ),
    )

    id: str = Field(primary_key=True)
    customer_id: str = Field(foreign_key="customers.id")
    kind: str
    role: str
    category: str | None = None
    topic: str | None = None
    template: str | None = None
    data: dict[str, Any] = _json(dict)
    subject: str | None = None
    body_text: str | None = None
    body_html: str | None = None
    sender_email: str | None = None
    sender_name: str | None = None
    human: bool = False
    transactional: bool = False
    priority: int | None = None
    send_after: datetime | None = _time()
    expires_at: datetime | None = _time()
    sent_at: datetime | None = _time()  # a planned touch: the time it is planned for
    channel: str = "email"  # email, or a touch recorded from elsewhere: call, meeting, ...
    summary: str | None = None
    planned: bool = False  # a touch planned elsewhere, not yet recorded as done
    playbook: str | None = None
    origin: str | None = None
    recipient: str | None = None  # "owner": an internal alert
    created_at: datetime = _time(nullable=False)
    digest: str
    # the current decision (its history is in `decisions`)
    status: str
    rule: str | None = None
    reason: str = ""
    send_at: datetime | None = _time()
    email_id: str | None = None
    details: dict[str, Any] = _json(dict)
    rules_version: str | None = None
    final: bool = False
    decided_at: datetime | None = _time()
    in_flight: bool = False
    cancelled_by: str | None = None


class EmailRow(SQLModel, table=True):
    __tablename__ = "emails"
    __table_args__ = (
        Index("ix_emails_status_send_at", "status", "send_at"),
        # a customer's planned (or sent) emails: exact even without statistics, see 0003
        Index("ix_emails_customer_status", "customer_id", "status"),
    )

    id: str = Field(primary_key=True)
    customer_id: str = Field(foreign_key="customers.id")
    send_at: datetime = _time(nullable=False)
    status: str
    members: list[str] = _json(list)
    role: str
    category: str | None = None
    transactional: bool = False
    merge_rule: str | None = None
    template: str | None = None
    to_owner: bool = False
    lease_owner: str | None = None
    lease_until: datetime | None = _time()
    attempts: int = 0
    provider_id: str | None = None
    error: str | None = None
    sent_at: datetime | None = _time()
    created_at: datetime = _time(nullable=False)
    updated_at: datetime = _time(nullable=False)
    rules_version: str | None = None


class EventRow(SQLModel, table=True):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_processed_at", "processed", "at"),)

    id: str = Field(primary_key=True)
    customer_id: str = Field(foreign_key="customers.id", index=True)
    type: str
    at: datetime = _time(nullable=False)
    data: dict[str, Any] = _json(dict)
    attributes: dict[str, Any] = _json(dict)
    received_at: datetime = _time(nullable=False)
    digest: str
    # with `at`: the due unprocessed events and the earliest of them, without a scan
    processed: bool = Field(default=False)


class DecisionRow(SQLModel, table=True):
    __tablename__ = "decisions"

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(index=True)
    customer_id: str
    decided_at: datetime = _time(nullable=False)
    status: str
    send_at: datetime | None = _time()
    email_id: str | None = None
    rule: str | None = None
    reason: str = ""
    details: dict[str, Any] = _json(dict)
    rules_version: str | None = None


class MetaRow(SQLModel, table=True):
    __tablename__ = "meta"

    key: str = Field(primary_key=True)
    value: str


customers = CustomerRow.__table__  # type: ignore[attr-defined]
messages = MessageRow.__table__  # type: ignore[attr-defined]
emails = EmailRow.__table__  # type: ignore[attr-defined]
events = EventRow.__table__  # type: ignore[attr-defined]
decisions = DecisionRow.__table__  # type: ignore[attr-defined]
meta = MetaRow.__table__  # type: ignore[attr-defined]
