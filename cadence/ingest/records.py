"""What may come in, checked at the door: customers, messages (to send or already sent) and
events. A record that does not fit is reported with a reason a person can act on."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cadence.model import Customer, Event, Message, MessageKind, Sender


def check_address(value: str) -> str:
    try:
        # test_environment: the contract's own examples use `.test` domains
        return validate_email(value, check_deliverability=False, test_environment=True).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"{value!r} is not an email address: {exc}") from None


def aware(value: Any) -> Any:
    """Times need an offset: a naive time is an error, not a guess."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 time") from None
        if parsed.tzinfo is None:
            raise ValueError(
                f"{value} has no UTC offset; write {value}Z or with an offset like +01:00"
            )
        return parsed.astimezone(UTC)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{value} has no UTC offset")
        return value.astimezone(UTC)
    return value


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)

    def digest(self) -> str:
        """Identical records have identical digests, however their times were written."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class CustomerIn(_Record):
    email: str
    name: str
    timezone: str | None = None
    account: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    _email = field_validator("email")(classmethod(lambda cls, v: check_address(v)))

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not a time zone (use IANA names like Europe/Berlin)"
            ) from None
        return value

    def to_model(self) -> Customer:
        return Customer(
            self.id, self.email, self.name, self.timezone, self.account, dict(self.attributes)
        )


class FromIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    email: str
    name: str | None = None

    _email = field_validator("email")(classmethod(lambda cls, v: check_address(v)))


class _MessageFields(_Record):
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
    priority: int | None = None
    send_after: datetime | None = None
    expires_at: datetime | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    _times = field_validator("send_after", "expires_at", mode="before")(
        classmethod(lambda cls, v: aware(v))
    )

    def _message(
        self, kind: MessageKind, send_after: datetime | None, sent_at: datetime | None
    ) -> Message:
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
            sent_at=sent_at,
        )


class MessageIn(_MessageFields):
    """A message for cadence to send."""

    @model_validator(mode="after")
    def _content(self) -> MessageIn:
        if self.template is None and (self.subject is None or self.body_text is None):
            raise ValueError("give `template` (with `data`), or `subject` and `body_text`")
        if self.template is not None and self.subject is not None:
            raise ValueError("give `template` or a ready `subject`, not both")
        if self.send_after and self.expires_at and self.expires_at <= self.send_after:
            raise ValueError("expires_at must be after send_after")
        return self

    def to_model(self, now: datetime) -> Message:
        return self._message(MessageKind.SUBMITTED, self.send_after or now, None)


class RecordedIn(_MessageFields):
    """A message another system already sent."""

    sent_at: datetime

    _sent = field_validator("sent_at", mode="before")(classmethod(lambda cls, v: aware(v)))

    def to_model(self, now: datetime) -> Message:
        return self._message(MessageKind.RECORDED, self.send_after, self.sent_at)


class EventIn(_Record):
    customer: str = Field(min_length=1)
    type: str = Field(min_length=1)
    at: datetime
    data: dict[str, Any] = Field(default_factory=dict)
    attributes: dict[str, Any] = Field(default_factory=dict)

    _at = field_validator("at", mode="before")(classmethod(lambda cls, v: aware(v)))

    @model_validator(mode="after")
    def _special(self) -> EventIn:
        cats = self.data.get("categories")
        if (
            self.type in ("unsubscribed", "resubscribed")
            and cats is not None
            and not (isinstance(cats, list) and all(isinstance(c, str) for c in cats))
        ):
            raise ValueError("data.categories is a list of category names")
        if self.type == "bounced" and self.data.get("kind") not in ("hard", "soft"):
            raise ValueError("a bounced event needs data.kind: hard or soft")
        return self

    def to_model(self) -> Event:
        return Event(
            self.id, self.customer, self.type, self.at, dict(self.data), dict(self.attributes)
        )


def explain(exc: ValidationError) -> str:
    """Pydantic's errors as one line a person can act on."""
    parts = []
    for e in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in e["loc"] if p != "from_") or "record"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "missing":
            parts.append(f"missing field `{loc}`")
        elif e["type"] == "extra_forbidden":
            parts.append(f"unknown field `{loc}`")
        else:
            parts.append(f"`{loc}`: {msg}" if loc != "record" else msg)
    return "; ".join(parts)
