"""What may come in, checked at the door: customers, messages (to send or already sent) and
events, as pydantic models that turn into `cadence.model` values.

Why so strict: every record is kept for good and decides what customers receive, so a guess
made here (a naive time read as UTC, `"yes"` read as true, a misspelt field ignored) would
become a wrong email later. Models forbid unknown fields and validate strictly; a record that
does not fit gets one reason a person can act on (`record_errors.explain`), never a pydantic
dump.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cadence.instants import read_instant
from cadence.model import Customer, Event, Message, MessageKind, Sender
from cadence.words import show

__all__ = [
    "CustomerIn",
    "EventIn",
    "FromIn",
    "MessageIn",
    "Record",
    "RecordedIn",
    "aware",
    "check_address",
    "check_zone",
]

INT32 = 2**31 - 1  # `priority` is an INTEGER column on both databases


def check_address(value: str) -> str:
    """A syntactically valid address, normalised (domain lower-cased, Unicode NFC).

    `test_environment=True` because the contract's own examples use `.test` domains
    (`ana@acme.test`), which email-validator rejects as special-use by default; the other
    special-use names (`.local`, `.invalid`, `localhost`, ...) stay rejected. No DNS lookups:
    ingestion must not depend on the network, and bounces tell us about dead addresses.
    """
    try:
        return validate_email(value, check_deliverability=False, test_environment=True).normalized
    except EmailNotValidError as exc:
        why = str(exc).rstrip(".")
        raise ValueError(f"{show(value)} is not an email address: {why}") from None


def check_zone(value: str) -> str:
    """An IANA time zone name that this machine's zoneinfo knows (send windows need it)."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{show(value)} is not a time zone; use an IANA name like Europe/Berlin"
        ) from None
    return value


def aware(value: Any) -> datetime:
    """An ISO 8601 time with an offset, as aware UTC. A naive time is an error, not a guess:
    reading it as UTC (or as the server's zone) would silently shift a send by hours."""
    if isinstance(value, datetime):  # from Python callers, not from files
        if value.tzinfo is None:
            raise ValueError(f"{value.isoformat()} has no UTC offset")
        return value.astimezone(UTC)
    if not isinstance(value, str):
        raise ValueError(f"{show(value)} is not a time; write it like 2026-11-02T09:00:00Z")
    return read_instant(value)


class Record(BaseModel):
    """Fields and checks every input record shares."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, populate_by_name=True)

    id: str = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if value != value.strip():
            raise ValueError(f"{show(value)} has spaces around it")
        return value

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, raw: Any) -> Any:
        """PostgreSQL refuses NUL characters in text: refuse them here, with the field."""
        if isinstance(raw, dict):
            for key, value in raw.items():
                if _has_nul(value):
                    raise ValueError(f"`{key}` contains a NUL character (\\u0000)")
        return raw

    def digest(self) -> str:
        """sha256 of the canonical JSON of the validated record: times in UTC, addresses
        normalised, defaults filled, keys sorted. The same record sent twice therefore always
        has the same digest, however its times were written, and a repeat is told from a
        conflict. Defaults that depend on the moment (`send_after` = now) are not filled in
        here, or a repeat sent a minute later would look like a conflict."""
        canonical = json.dumps(
            self.model_dump(mode="json", by_alias=True),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class CustomerIn(Record):
    """One customer; `customers import` upserts by id."""

    email: str
    name: str = Field(min_length=1)
    timezone: str | None = None  # None: the configured default_timezone
    account: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return check_address(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else check_zone(value)

    def to_model(self) -> Customer:
        return Customer(
            id=self.id,
            email=self.email,
            name=self.name,
            timezone=self.timezone,
            account=self.account,
            attributes=dict(self.attributes),
        )


class FromIn(BaseModel):
    """A message's own sender (`from`): a role's or a person's address."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    email: str
    name: str | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return check_address(value)


class _MessageFields(Record):
    """The fields `messages submit` and `messages record` share."""

    customer: str = Field(min_length=1)
    role: str = Field(min_length=1)
    category: str | None = None
    topic: str | None = None
    template: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    subject: str | None = None
    body_text: str | None = None
    body_html: str | None = None
    from_: FromIn | None = Field(None, alias="from")
    human: bool = False
    transactional: bool = False
    priority: int | None = Field(None, ge=-INT32, le=INT32)
    send_after: datetime | None = None
    expires_at: datetime | None = None

    @field_validator("send_after", "expires_at", mode="before")
    @classmethod
    def _times(cls, value: Any) -> Any:
        return None if value is None else aware(value)

    @model_validator(mode="after")
    def _lifetime(self) -> _MessageFields:
        if self.send_after is not None and self.expires_at is not None:
            problem = expiry_problem(self.send_after, self.expires_at)
            if problem:
                raise ValueError(problem)
        return self

    def _message(self, kind: MessageKind, send_after: datetime | None) -> Message:
        return Message(
            id=self.id,
            customer_id=self.customer,
            role=self.role,
            kind=kind,
            category=self.category,
            topic=self.topic,
            template=self.template,
            data=dict(self.data),
            subject=self.subject,
            body_text=self.body_text,
            body_html=self.body_html,
            sender=Sender(self.from_.email, self.from_.name) if self.from_ else None,
            human=self.human,
            transactional=self.transactional,
            priority=self.priority,
            send_after=send_after,
            expires_at=self.expires_at,
        )


def expiry_problem(send_after: datetime, expires_at: datetime) -> str | None:
    """Why a message's lifetime is empty, if it is: it could never be sent."""
    if expires_at > send_after:
        return None
    return (
        f"`expires_at` {expires_at.isoformat().replace('+00:00', 'Z')} is not after "
        f"`send_after` {send_after.isoformat().replace('+00:00', 'Z')}"
    )


class MessageIn(_MessageFields):
    """A message for cadence to send: a template with its data, or a ready subject and body.

    `send_after` left out means "now", filled in by `to_model(now)` (not at validation, so the
    digest does not depend on when the record arrived); `expires_at` left out stays None and
    the planner applies the rules' `max_delay`.
    """

    @model_validator(mode="after")
    def _content(self) -> MessageIn:
        ready = self.subject is not None or self.body_text is not None or self.body_html is not None
        if self.template is not None and ready:
            raise ValueError(
                "give `template` (with `data`) or a ready `subject` and `body_text`, not both"
            )
        if self.template is None:
            missing = [f for f in ("subject", "body_text") if getattr(self, f) is None]
            if missing:
                raise ValueError(
                    "give `template` (with `data`), or `subject` and `body_text`: missing "
                    + " and ".join(f"`{f}`" for f in missing)
                )
        return self

    def to_model(self, now: datetime) -> Message:
        return self._message(MessageKind.SUBMITTED, self.send_after or now)


_CHANNEL = re.compile(r"^[a-z][a-z0-9_-]*$")


class RecordedIn(_MessageFields):
    """A touch another system or a person already made, of any `channel` (an email, a call,
    a meeting, a chat): it counts against limits and redundancy like an email cadence sent.
    No template is needed, since nothing is rendered; a `summary` may stand in for a body.
    `planned_at` instead of `sent_at`: planned elsewhere (a booked call), it counts at that
    time, as a planned email does; the same id recorded again with `sent_at` marks it done."""

    channel: str = "email"
    summary: str | None = None
    sent_at: datetime | None = None
    planned_at: datetime | None = None

    @field_validator("sent_at", "planned_at", mode="before")
    @classmethod
    def _sent(cls, value: Any) -> Any:
        return None if value is None else aware(value)

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if not _CHANNEL.match(value):
            raise ValueError(
                f"{show(value)} is not a channel name: lower-case letters, digits, - and _ "
                "(email, call, meeting, chat, in_app, sms, ...)"
            )
        return value

    @model_validator(mode="after")
    def _when(self) -> RecordedIn:
        if (self.sent_at is None) == (self.planned_at is None):
            raise ValueError(
                "give `sent_at` (when it happened) or `planned_at` (when it is planned for), "
                "not both"
                if self.sent_at
                else "missing field `sent_at` (or `planned_at`)"
            )
        return self

    def to_model(self, now: datetime) -> Message:
        done = self.sent_at is not None
        return replace(
            self._message(MessageKind.RECORDED, self.send_after),
            sent_at=self.sent_at if done else self.planned_at,
            planned=not done,
            channel=self.channel,
            summary=self.summary,
        )

    def as_planned(self, planned_at: datetime) -> RecordedIn:
        """This record as it was when the touch was only planned (at `planned_at`): a record
        of it done may replace one of it planned, and nothing else may change."""
        return self.model_copy(update={"sent_at": None, "planned_at": planned_at})


class EventIn(Record):
    """A lifecycle event. The types cadence itself acts on have their `data` checked here, so a
    bounce of an unknown kind is refused at the door rather than ignored when applied."""

    customer: str = Field(min_length=1)
    type: str = Field(min_length=1)
    at: datetime
    data: dict[str, Any] = Field(default_factory=dict)
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, value: Any) -> Any:
        return aware(value)

    @model_validator(mode="after")
    def _special(self) -> EventIn:
        cats = self.data.get("categories")
        if (
            self.type in ("unsubscribed", "resubscribed", "preferences_changed")
            and cats is not None
            and not (isinstance(cats, list) and all(isinstance(c, str) for c in cats))
        ):
            raise ValueError(
                f"`data.categories` is a list of category names (none: all), not {show(cats)}"
            )
        most = self.data.get("max_per_week")
        if (
            self.type == "preferences_changed"
            and most is not None
            and (isinstance(most, bool) or not isinstance(most, int) or most < 1)
        ):
            raise ValueError(
                f"`data.max_per_week` is the most emails a week the customer wants (1 or more), "
                f"or null for as they come, not {show(most)}"
            )
        kind = self.data.get("kind")
        if self.type == "bounced" and kind not in ("hard", "soft"):
            raise ValueError(f"a bounced event needs `data.kind`: hard or soft, not {show(kind)}")
        return self

    def to_model(self) -> Event:
        return Event(
            id=self.id,
            customer_id=self.customer,
            type=self.type,
            at=self.at,
            data=dict(self.data),
            attributes=dict(self.attributes),
        )
