"""The names a `when` expression sees: `customer`, `message`, `event`, `now` and the helpers.

Everything here reads the context handed to the planner; nothing reads a clock or the store.
A missing attribute raises (the sandbox's StrictUndefined turns our AttributeError into an
error on use), because a silent `None` would make a rule quietly do nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from cadence.durations import parse_duration
from cadence.model import Customer, Event, Message, Sent

_DAY = 86400.0


class _View:
    """Attribute access over a mapping, without dict methods shadowing keys (`items`...)."""

    __slots__ = ("_kind", "_values")

    def __init__(self, kind: str, values: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_kind", kind)
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"{self._kind} has no attribute {name!r}") from None

    def __getitem__(self, name: str) -> Any:
        return self.__getattr__(name)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __repr__(self) -> str:
        return f"<{self._kind} {dict(self._values)!r}>"


def customer_view(customer: Customer) -> _View:
    values: dict[str, Any] = dict(customer.attributes)
    values.update(
        id=customer.id,
        email=customer.email,
        name=customer.name,
        timezone=customer.timezone,
        account=customer.account,
    )
    return _View("customer", values)


def message_view(message: Message) -> _View:
    return _View(
        "message",
        {
            "id": message.id,
            "role": message.role,
            "category": message.category,
            "topic": message.topic,
            "template": message.template,
            "data": _View("message.data", message.data),
            "human": message.human,
            "transactional": message.transactional,
            "priority": message.priority,
            "playbook": message.playbook,
        },
    )


def event_view(event: Event) -> _View:
    return _View(
        "event",
        {
            "id": event.id,
            "type": event.type,
            "at": event.at,
            "data": _View("event.data", event.data),
            "attributes": _View("event.attributes", event.attributes),
        },
    )


def to_time(value: object) -> datetime:
    """A datetime or an ISO 8601 text with an offset (attributes arrive as text)."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        raise TypeError(f"expected a time, got {value!r}")
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    return parsed


def _matches(
    message: Message, role: str | None, category: str | None, topic: str | None, human: bool | None
) -> bool:
    return (
        (role is None or message.role == role)
        and (category is None or message.category == category)
        and (topic is None or message.topic == topic)
        and (human is None or message.human == human)
    )


def make_scope(
    customer: Customer,
    history: Iterable[Sent],
    last_contact: Mapping[str, datetime],
    now: datetime,
    *,
    message: Message | None = None,
    event: Event | None = None,
) -> dict[str, Any]:
    """The scope for one evaluation, as of `now` (a message's own time, not the plan's)."""
    past = [s for s in history if not s.planned and s.at <= now]

    def sent_within(
        duration: str,
        role: str | None = None,
        category: str | None = None,
        topic: str | None = None,
        human: bool | None = None,
    ) -> int:
        since = now - parse_duration(duration)
        return sum(
            1
            for sent in past
            if sent.at >= since
            for member in sent.members
            if member.to is None and _matches(member, role, category, topic, human)
        )

    def days_since(value: object) -> float:
        return (now - to_time(value)).total_seconds() / _DAY

    def days_since_contact(role: str | None = None, human: bool | None = None) -> float:
        latest: datetime | None = None
        for sent in past:
            if any(
                m.to is None and _matches(m, role, None, None, human) for m in sent.members
            ) and (latest is None or sent.at > latest):
                latest = sent.at
        key = "any" if role is None else f"role:{role}"
        if human:
            key = "human" if role is None else f"{key}:human"
        stored = last_contact.get(key)
        if stored is not None and stored <= now and (latest is None or stored > latest):
            latest = stored
        if latest is None:
            latest = customer.created_at
        if latest is None:
            return float("inf")
        return max(0.0, (now - latest) / timedelta(days=1))

    helpers: dict[str, Callable[..., Any]] = {
        "sent_within": sent_within,
        "days_since": days_since,
        "days_since_contact": days_since_contact,
    }
    scope: dict[str, Any] = {"customer": customer_view(customer), "now": now, **helpers}
    if message is not None:
        scope["message"] = message_view(message)
    if event is not None:
        scope["event"] = event_view(event)
    return scope
