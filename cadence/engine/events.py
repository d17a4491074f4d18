"""What an event means to a customer: the one definition, used by ingestion, the passes and
every preview or simulation.

Events take effect at their own time (`at`), applied in time order. Reachability follows the
customer's own word (unsubscribe, resubscribe, bounces, spam reports); attributes merge in,
except that an event older than the attributes already known does not overwrite them (an old
event replayed late never undoes what a newer one said).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from cadence.model import Customer, Engagement, Event, Reachability

#: the event types cadence itself makes: the unsubscribe link and the preference page
#: (unsubscribed, resubscribed, preferences_changed), SendGrid's event webhook (bounced,
#: spam_reported, delivered, opened, clicked, unsubscribed) and its Inbound Parse (replied).
#: Any other type comes only from the files a team ingests.
OWN_TYPES = frozenset(
    {
        "unsubscribed",
        "resubscribed",
        "preferences_changed",
        "bounced",
        "spam_reported",
        "delivered",
        "opened",
        "clicked",
        "replied",
    }
)


def categories_of(event: Event) -> frozenset[str]:
    """The categories an (un)subscribe names: a list, or one category as a string; none
    means all of them."""
    named = event.data.get("categories")
    if not named:
        return frozenset()
    if isinstance(named, str):
        return frozenset({named})
    return frozenset(str(c) for c in named)


def reachability_after(reach: Reachability, event: Event) -> Reachability:
    """The customer's reachability as one event leaves it."""
    if event.type == "unsubscribed":
        cats = categories_of(event)
        if cats:
            return replace(reach, unsubscribed_categories=reach.unsubscribed_categories | cats)
        return replace(reach, unsubscribed_all=True)
    if event.type == "resubscribed":
        cats = categories_of(event)
        if cats:
            return replace(reach, unsubscribed_categories=reach.unsubscribed_categories - cats)
        # back to everything they had left; bounces and complaints are not theirs to undo
        return replace(reach, unsubscribed_all=False, unsubscribed_categories=frozenset())
    if event.type == "bounced":
        if event.data.get("kind") == "hard":
            return replace(reach, hard_bounced=True)
        return replace(reach, soft_bounces=reach.soft_bounces + 1)
    if event.type == "spam_reported":
        return replace(reach, spam_reported=True)
    if event.type == "preferences_changed":
        # the customer's whole choice, as their preference page saves it: the categories
        # they left (none: they want them all) and a cap of their own, or none
        most = event.data.get("max_per_week")
        return replace(
            reach,
            unsubscribed_categories=categories_of(event),
            max_per_week=most if isinstance(most, int) and not isinstance(most, bool) else None,
        )
    return reach


def engagement_after(engagement: Engagement, event: Event) -> Engagement:
    """How the customer answers our mail, as one event leaves it: an `opened` (not a mail
    client's machine open, which says nothing of a person), a `clicked`, a `replied`."""
    fields = _ENGAGEMENT.get(event.type)
    if fields is None or (event.type == "opened" and event.data.get("machine_open")):
        return engagement
    last, count = fields
    before: datetime | None = getattr(engagement, last)
    at = event.at if before is None else max(before, event.at)
    return replace(engagement, **{last: at, count: getattr(engagement, count) + 1})


#: the event types engagement keeps: the fields of its latest time and of its count
_ENGAGEMENT = {
    "opened": ("last_open_at", "opens"),
    "clicked": ("last_click_at", "clicks"),
    "replied": ("last_reply_at", "replies"),
}


def apply_event(customer: Customer, event: Event) -> Customer:
    """The customer as one event leaves them (reachability, engagement and attributes)."""
    reach = reachability_after(customer.reach, event)
    engagement = engagement_after(customer.engagement, event)
    attributes, attributes_at = customer.attributes, customer.attributes_at
    if event.attributes and (attributes_at is None or event.at >= attributes_at):
        attributes = {**attributes, **event.attributes}
        attributes_at = event.at
    if (
        reach is customer.reach
        and attributes is customer.attributes
        and engagement is customer.engagement
    ):
        return customer
    return replace(
        customer,
        reach=reach,
        attributes=attributes,
        attributes_at=attributes_at,
        engagement=engagement,
    )


def apply_events(customer: Customer, events: Iterable[Event]) -> Customer:
    """The customer after these events, taken in time order (then by id)."""
    for event in in_order(events):
        if event.customer_id == customer.id:
            customer = apply_event(customer, event)
    return customer


def in_order(events: Iterable[Event]) -> Sequence[Event]:
    """Events in the order they take effect: by time, then id."""
    return sorted(events, key=lambda e: (e.at, e.id))
