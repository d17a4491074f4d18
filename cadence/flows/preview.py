"""`preview` and `explain`: what the passes will do for a customer, or to a message, read from
the passes themselves run on a scratch copy (`timeline.run_on_scratch`), sending nothing."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from cadence.model import Customer, Decision, Email, Message, MessageKind, Status

if TYPE_CHECKING:
    from cadence.config import Settings
    from cadence.ledger.ledger import Ledger
    from cadence.ledger.reads import DecisionRecord
    from cadence.rules.model import Rules


@dataclass(frozen=True)
class Preview:
    customer_id: str
    customer: Customer
    as_of: datetime
    days: int
    timezone: str
    emails: tuple[Email, ...]  # what the passes send within the horizon, in order
    messages: dict[str, Message]
    # what the passes decide for each message open at `as_of` or made within the horizon
    # (the decision a sent one went out under), then those settled before, in the window
    decisions: tuple[Decision, ...]
    # each email's subject and sender as it goes out (and with `bodies`, its text and HTML)
    rendered: dict[str, dict[str, str | None]]


class UnknownCustomer(LookupError):
    pass


def preview(
    store: Ledger,
    settings: Settings,
    rules: Rules,
    customer_id: str,
    as_of: datetime,
    days: int,
    *,
    bodies: bool = False,
) -> Preview:
    """What the passes will do for the customer from `as_of` for `days`, sending nothing:
    the daemon's own passes, run on a scratch copy of the customer's part of the ledger
    (with `rules` that plan accounts together, the whole account's), at every moment
    something is due. Events already in the ledger take effect at their time, sweeps
    happen as their periods begin, and what goes counts against what comes after it."""
    from cadence.flows.timeline import run_on_scratch

    customer = store.reads.customer(customer_id)
    if customer is None:
        raise UnknownCustomer(customer_id)
    ids = [customer_id]
    if rules.plans_accounts and customer.account is not None:
        ids = store.reads.customers_of_account(customer.account)
    horizon = as_of + timedelta(days=days)
    run = run_on_scratch(store, settings, rules, as_of, horizon, customer_ids=ids, bodies=bodies)
    try:
        outcomes = run.outcomes([customer_id])
        emails = tuple(run.sent([customer_id]))
        transport = run.transport
    finally:
        run.close()
    earliest = as_of - timedelta(days=days)
    ahead: list[tuple[datetime, Decision]] = []
    behind: list[tuple[datetime, Decision]] = []
    for message, decision in outcomes:
        if message.id in run.settled_before:
            when = message.sent_at or decision.send_at or message.send_after
            if when is not None and earliest <= when <= horizon:
                behind.append((when, decision))
        elif (message.send_after or as_of) <= horizon:
            ahead.append((decision.send_at or message.send_after or as_of, decision))
    rendered: dict[str, dict[str, str | None]] = {}
    for email in emails:
        out = transport.emails.get(email.id)
        item: dict[str, str | None] = {"subject": transport.subjects.get(email.id)}
        if email.id in transport.senders:
            item["from_email"], item["from_name"] = transport.senders[email.id]
        if bodies and out is not None:
            item["text"], item["html"] = out.text, out.html
        rendered[email.id] = item
    return Preview(
        customer_id=customer_id,
        customer=customer,
        as_of=as_of,
        days=days,
        timezone=customer.timezone or settings.default_timezone,
        emails=emails,
        messages={m.id: m for m, _ in outcomes},
        decisions=tuple(
            d for _, d in [*sorted(ahead, key=_by_time), *sorted(behind, key=_by_time)]
        ),
        rendered=rendered,
    )


def _by_time(item: tuple[datetime, Decision]) -> tuple[datetime, str]:
    return item[0], item[1].message_id


@dataclass(frozen=True)
class Explanation:
    message_id: str
    # what passes decided, oldest first; a touch recorded from elsewhere (a call, a meeting,
    # an email another system sent), which no pass decides, starts with what was recorded
    history: tuple[DecisionRecord, ...]
    # for a message still open: what the passes will decide, from a preview of its customer
    upcoming: Decision | None
    as_of: datetime


def explain(
    store: Ledger, settings: Settings, rules: Rules, message_id: str, as_of: datetime
) -> Explanation | None:
    """A message's decisions over time and, while it is open, what the passes will decide
    next (the preview's decision: the same passes, not a guess). None: no such message."""
    found = store.reads.message(message_id)
    if found is None:
        return None
    message, current = found
    history = tuple(store.reads.decision_history(message_id))
    if message.kind == MessageKind.RECORDED:
        history = (recorded_entry(message, current), *history)
    upcoming = None
    if not current.final:
        expires = message.expires(rules.max_delay, as_of)
        days = max(1, min(MAX_EXPLAIN_DAYS, math.ceil((expires - as_of) / timedelta(days=1))))
        p = preview(store, settings, rules, message.customer_id, as_of, days)
        upcoming = next((d for d in p.decisions if d.message_id == message_id), None)
    return Explanation(message_id, history, upcoming, as_of)


def recorded_entry(message: Message, current: Decision) -> DecisionRecord:
    """What the ledger holds about a touch recorded from elsewhere, as the first entry of its
    history (no pass decides it): the channel, who, when, planned or done, and its summary
    (an email's subject when it has none). It is dated when it was first recorded, and its
    status stays `recorded`; a cancellation, if any, follows it.

    Only a touch planned elsewhere can be cancelled, and cancelling it clears `planned`: a
    cancelled one is told as the planned touch it was."""
    from cadence.engine.explain import touch_label
    from cadence.ledger.reads import DecisionRecord

    if current.status == Status.CANCELLED:
        message = replace(message, planned=True)
    at = message.sent_at
    when = "" if at is None else f" {at:%Y-%m-%d %H:%M} UTC"
    label = touch_label(message)
    if message.channel == "email" and label.startswith("a "):
        label = "an " + label.removeprefix("a ")
    if message.planned:
        what = f"planned for{when}; it counts at that time until it is recorded as done"
    elif message.channel == "email":
        what = f"sent by another system{when}; it counts like an email cadence sent"
    else:
        what = f"done{when}; it counts like an email cadence sent"
    account = message.summary or (message.subject if message.channel == "email" else None)
    reason = f"{label}, {what}" + (f". {account}" if account else "")
    entry = Decision(message.id, Status.RECORDED, reason, send_at=at, final=True)
    return DecisionRecord(message.created_at or at or current.send_at or _EPOCH, entry)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


#: how far `explain` looks ahead for an open message: until it expires, at most this long
MAX_EXPLAIN_DAYS = 90
