"""The names a `when` expression sees: `customer`, `message`, `event`, `now` and the helpers.

Everything here reads the context handed to the planner; nothing reads a clock or the store.
A missing attribute raises (the sandbox's StrictUndefined turns our AttributeError into an
error on use), because a silent `None` would make a rule quietly do nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from cadence.durations import parse_duration
from cadence.instants import read_instant
from cadence.model import Customer, Event, Message, Sent
from cadence.rules.model import Expression
from cadence.views import View, customer_view, event_view, message_view

#: `sent_within("7d")` runs for every message a `when` looks at; rules name few durations
_duration = lru_cache(maxsize=256)(parse_duration)

_DAY = 86400.0


def to_time(value: object) -> datetime:
    """A datetime or an ISO 8601 text with an offset (attributes arrive as text)."""
    if isinstance(value, str):
        return read_instant(value)
    if not isinstance(value, datetime):
        raise TypeError(f"expected a time, got {value!r}")
    if value.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset")
    return value


def _matches(
    message: Message,
    role: str | None,
    category: str | None,
    topic: str | None,
    human: bool | None,
    channel: str | None,
) -> bool:
    return (
        (role is None or message.role == role)
        and (category is None or message.category == category)
        and (topic is None or message.topic == topic)
        and (human is None or message.human == human)
        and (channel is None or message.channel == channel)
    )


class _Helpers:
    """The helper functions of one evaluation time, over one customer's ledger slice."""

    __slots__ = ("customer", "last_contact", "now", "past")

    def __init__(
        self,
        customer: Customer,
        past: list[Sent],
        last_contact: Mapping[str, datetime],
        now: datetime,
    ) -> None:
        self.customer, self.past, self.last_contact, self.now = customer, past, last_contact, now

    def sent_within(
        self,
        duration: str,
        role: str | None = None,
        category: str | None = None,
        topic: str | None = None,
        human: bool | None = None,
        channel: str | None = None,
    ) -> int:
        """Touches of every channel (calls and meetings too) unless `channel` says one."""
        now = self.now
        since = now - _duration(duration)
        return sum(
            1
            for sent in self.past
            if since <= sent.at <= now
            for member in sent.members
            if member.to is None and _matches(member, role, category, topic, human, channel)
        )

    def days_since(self, value: object) -> float:
        return (self.now - to_time(value)).total_seconds() / _DAY

    def days_since_contact(
        self, role: str | None = None, human: bool | None = None, channel: str | None = None
    ) -> float:
        """Days since the last touch (of any channel unless `channel` says one) that matches;
        beyond the ledger the planner reads, the customer's kept contact times answer. With
        no filter, the customer's own last reply counts. A customer nobody has contacted yet
        counts from when cadence first knew them."""
        now = self.now
        latest: datetime | None = None
        for sent in self.past:
            if sent.at > now:
                continue
            if any(
                m.to is None and _matches(m, role, None, None, human, channel) for m in sent.members
            ) and (latest is None or sent.at > latest):
                latest = sent.at
        stored = self.last_contact.get(contact_key(role, human, channel) or "")
        if stored is not None and stored <= now and (latest is None or stored > latest):
            latest = stored
        # the customer writing back is contact too (of no role, no channel of ours)
        replied = self.customer.engagement.last_reply_at
        unfiltered = role is None and human is None and channel is None
        if unfiltered and replied is not None and replied <= now:
            latest = replied if latest is None or replied > latest else latest
        if latest is None:
            latest = self.customer.created_at
        if latest is None:
            return float("inf")
        return max(0.0, (now - latest) / timedelta(days=1))


def contact_keys(role: str, human: bool, channel: str = "email") -> list[str]:
    """The `last_contact` keys one touch (of this role, by a person or not, on this channel)
    updates; `contact_key` names the one a question reads. Both spellings live here."""
    keys = ["any", f"role:{role}", f"channel:{channel}"]
    if human:
        keys += ["human", f"role:{role}:human"]
    return keys


def contact_key(role: str | None, human: bool | None, channel: str | None) -> str | None:
    """The customer's kept contact time that answers `days_since_contact` with these filters
    (None: none is kept for that combination; the ledger the planner reads answers alone)."""
    if channel is not None:
        return f"channel:{channel}" if role is None and not human else None
    key = "any" if role is None else f"role:{role}"
    if human:
        key = "human" if role is None else f"{key}:human"
    return key


class ScopeFactory:
    """Scopes for one customer: the customer's view and ledger slice are prepared once, each
    evaluation only adds its own time, message and event."""

    def __init__(
        self, customer: Customer, history: Iterable[Sent], last_contact: Mapping[str, datetime]
    ) -> None:
        self.customer = customer
        self.history = history
        self.last_contact = last_contact
        # prepared at the first scope: the planner makes a factory for every customer, and
        # most customers' messages meet no `when` at all
        self._prepared: tuple[View, list[Sent]] | None = None
        self._constant: dict[int, tuple[Expression, Any]] = {}

    def customer_only(self, expression: Expression, now: datetime) -> Any:
        """The value of an expression that reads nothing but `customer` (say
        `customer.open_tickets > 0`): the same for every message of this customer, so
        evaluated once. A failure is not kept: it raises again for the next message."""
        found = self._constant.get(id(expression))
        if found is None or found[0] is not expression:  # by identity, as in windows.py
            found = self._constant[id(expression)] = (
                expression,
                expression.evaluate(self.scope(now)),
            )
        return found[1]

    def scope(
        self, now: datetime, *, message: Message | None = None, event: Event | None = None
    ) -> dict[str, Any]:
        if self._prepared is None:
            self._prepared = (customer_view(self.customer), list(self.history))
        view, past = self._prepared
        helpers = _Helpers(self.customer, past, self.last_contact, now)
        scope: dict[str, Any] = {
            "customer": view,
            "now": now,
            "sent_within": helpers.sent_within,
            "days_since": helpers.days_since,
            "days_since_contact": helpers.days_since_contact,
        }
        if message is not None:
            scope["message"] = message_view(message)
        if event is not None:
            scope["event"] = event_view(event)
        return scope


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
    return ScopeFactory(customer, history, last_contact).scope(now, message=message, event=event)
