"""Values as templates and rule expressions see them: attribute access over a mapping.

One definition for both, so `customer.plan` means the same in a `when` and in a template. A
missing key raises KeyError on `x[key]` (after AttributeError on `x.key`): Jinja's sandbox turns
that into an undefined value, which `| default(...)` and `is defined` handle and which otherwise
fails loudly (StrictUndefined).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from cadence.model import Customer, Event, Message, Sender


class View:
    """Attribute access over a mapping for templates (`customer.plan`, `data.feature`).

    Unlike a dict, its methods cannot shadow keys (`data.items` is the key `items`), and a
    missing key is undefined, so `data.ticket | default("your ticket")` works while a bare
    `data.ticket` fails under StrictUndefined.
    """

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
        return self._values[name]  # KeyError: the sandbox then returns an Undefined

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"<{self._kind} {dict(self._values)!r}>"


_KINDS: dict[str, type[View]] = {}


def view(kind: str, values: Mapping[str, Any]) -> View:
    """A View whose class is named after `kind`, so that Jinja's own error reads
    "'data object' has no attribute 'ticket'" rather than naming this module's class."""
    cls = _KINDS.get(kind)
    if cls is None:
        cls = _KINDS[kind] = type(kind, (View,), {"__slots__": (), "__module__": "builtins"})
    return cls(kind, values)


def customer_view(customer: Customer) -> View:
    values: dict[str, Any] = dict(customer.attributes)
    e = customer.engagement  # from the provider's events and replies: ours, not an attribute
    values.update(
        last_open_at=e.last_open_at,
        last_click_at=e.last_click_at,
        last_reply_at=e.last_reply_at,
        opens=e.opens,
        clicks=e.clicks,
        replies=e.replies,
    )
    values.update(
        id=customer.id,
        email=customer.email,
        name=customer.name,
        timezone=customer.timezone,
        account=customer.account,
    )
    return view("customer", values)


def message_view(message: Message) -> View:
    return view(
        "message",
        {
            "id": message.id,
            "role": message.role,
            "category": message.category,
            "topic": message.topic,
            "template": message.template,
            "data": view("data", message.data),
            "human": message.human,
            "channel": message.channel,
            "transactional": message.transactional,
            "priority": message.priority,
            "playbook": message.playbook,
            "send_after": message.send_after,
        },
    )


def sender_view(sender: Sender | None) -> View:
    if sender is None:
        return view("sender", {})
    return view("sender", {"email": sender.email, "name": sender.name or sender.email})


def event_view(event: Event) -> View:
    return view(
        "event",
        {
            "id": event.id,
            "type": event.type,
            "at": event.at,
            "data": view("data", event.data),
            "attributes": view("attributes", event.attributes),
        },
    )


#: what `customer.<name>` reads besides the customer's attributes (which these override):
#: the names `customer_view` adds, read off a customer with no attributes
CUSTOMER_FIELDS = frozenset(customer_view(Customer(id="", email="", name="")))
