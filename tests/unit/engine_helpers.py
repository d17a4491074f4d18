"""Small builders for planner tests: rules and messages without files or a database."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from cadence.model import Customer, CustomerContext, Message, MessageKind, Reachability, Sent
from cadence.rules.model import (
    Filter,
    Limit,
    Location,
    MergeRule,
    Rules,
    SendWindow,
    SuppressRule,
)

LOC = Location("test.yaml", 1, 1)
# Monday 23 November 2026, 12:00 UTC (07:00 in New York)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
WEEKDAYS = frozenset(range(5))


def roles(*names: str) -> Filter:
    return Filter(roles=frozenset(names))


def categories(*names: str) -> Filter:
    return Filter(categories=frozenset(names))


def limit(name: str, **kw: Any) -> Limit:
    return Limit(name=name, location=LOC, **kw)


def window(days: frozenset[int], start: str, end: str, flt: Filter | None = None) -> SendWindow:
    return SendWindow(
        location=LOC,
        filter=flt or Filter(),
        days=days,
        start=time.fromisoformat(start),
        end=time.fromisoformat(end),
    )


def merge(name: str, flt: Filter, window_: timedelta, max_items: int = 4, **kw: Any) -> MergeRule:
    return MergeRule(name=name, location=LOC, filter=flt, window=window_, max_items=max_items, **kw)


def suppress(name: str, **kw: Any) -> SuppressRule:
    return SuppressRule(name=name, location=LOC, **kw)


def rules(**kw: Any) -> Rules:
    return Rules(version="test", **kw)


def customer(
    cid: str = "c-17", tz: str = "America/New_York", reach: Reachability | None = None, **attrs: Any
) -> Customer:
    return Customer(
        id=cid,
        email=f"{cid}@acme.test",
        name=cid,
        timezone=tz,
        account="acme",
        attributes=attrs,
        created_at=NOW - timedelta(days=60),
        reach=reach or Reachability(),
    )


def msg(mid: str, role: str, category: str | None, after: timedelta, **kw: Any) -> Message:
    return Message(
        id=mid,
        customer_id=kw.pop("customer_id", "c-17"),
        role=role,
        category=category,
        subject=f"subject {mid}",
        body_text="body",
        send_after=NOW + after,
        **kw,
    )


def recorded(mid: str, role: str, at: datetime, **kw: Any) -> Sent:
    member = Message(
        id=mid, customer_id="c-17", role=role, kind=MessageKind.RECORDED, sent_at=at, **kw
    )
    return Sent(id=mid, at=at, customer_id="c-17", members=(member,))


def context(*pending: Message, history: tuple[Sent, ...] = (), **kw: Any) -> CustomerContext:
    cust = kw.pop("customer_", None) or customer()
    return CustomerContext(customer=cust, pending=pending, history=history, **kw)
