"""Playbooks: the messages lifecycle events and sweeps create, and the ones events cancel
(a playbook's `cancel_on`, and the cancel rules).

Pure, like the planner. Every created message has an id derived from the playbook and what
fired it (the event id, or the sweep's period), so creating it twice is the same insert twice:
re-ingested events, repeated sweeps and two daemons sweeping at once all converge on one row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cadence.engine.scope import make_scope
from cadence.model import Customer, Event, Message, MessageKind, Sent
from cadence.rules.model import CancelRule, ExpressionError, Playbook, Rules

_EPOCH = datetime(2000, 1, 3, tzinfo=UTC)  # a Monday: sweep periods line up with weeks


@dataclass(frozen=True, slots=True)
class PlaybookRun:
    """The last message a playbook created for one customer, for its cooldown."""

    playbook: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Cancellation:
    message_id: str
    event: Event
    rule: str  # the playbook or cancel rule that cancelled it on the event
    kind: str = "playbook"  # or "cancel rule"

    @property
    def by(self) -> str:
        """What cancelled it on the event: "playbook after-onboarding", "cancel rule x"."""
        return f"{self.kind} {self.rule}"

    @property
    def reason(self) -> str:
        """What the cancelled message's entry says: the event and the rule, and for a reply
        what the customer answered, so the entry reads without the event at hand."""
        event = self.event
        said = f"event {event.id} ({event.type}) under {self.by}"
        if event.type != "replied":
            return said
        email, role = event.data.get("email_id"), event.data.get("role")
        if email and role:
            return f"{said}: the customer replied to {role}'s email {email}"
        return f"{said}: the customer wrote to us"


@dataclass(frozen=True, slots=True)
class Skipped:
    """A playbook that matched but did not fire, and why (shown by preview and logs)."""

    playbook: str
    reason: str


@dataclass(frozen=True, slots=True)
class Fired:
    messages: tuple[Message, ...] = ()
    cancellations: tuple[Cancellation, ...] = ()
    skipped: tuple[Skipped, ...] = ()


def _in_cooldown(playbook: Playbook, runs: Iterable[PlaybookRun], at: datetime) -> bool:
    if playbook.cooldown is None:
        return False
    return any(
        r.playbook == playbook.name and at - playbook.cooldown < r.created_at <= at for r in runs
    )


def _message(
    playbook: Playbook,
    customer: Customer,
    mid: str,
    at: datetime,
    origin: str,
    data: Mapping[str, object],
) -> Message:
    send = playbook.send
    send_after = at + playbook.wait
    return Message(
        id=mid,
        customer_id=customer.id,
        role=send.role,
        category=send.category,
        topic=send.topic,
        template=send.template,
        data={**send.data, **data},
        subject=send.subject,
        body_text=send.body_text,
        transactional=send.transactional,
        priority=send.priority,
        send_after=send_after,
        expires_at=send_after + send.expires_after if send.expires_after else None,
        playbook=playbook.name,
        origin=origin,
        to=send.to,
        created_at=at,
    )


def _when(
    playbook: Playbook,
    customer: Customer,
    history: Sequence[Sent],
    last_contact: Mapping[str, datetime],
    at: datetime,
    event: Event | None,
) -> tuple[bool, str | None]:
    if playbook.when is None:
        return True, None
    scope = make_scope(customer, history, last_contact, at, event=event)
    try:
        return bool(playbook.when.evaluate(scope)), None
    except ExpressionError as exc:
        return False, f"{playbook.name} failed: {exc}"


def on_event(
    event: Event,
    customer: Customer,
    rules: Rules,
    *,
    history: Sequence[Sent] = (),
    last_contact: Mapping[str, datetime] | None = None,
    runs: Sequence[PlaybookRun] = (),
    open_messages: Sequence[Message] = (),
) -> Fired:
    """What one event does: the check-ins it creates and the pending messages it cancels
    (by a playbook's `cancel_on`, or by a cancel rule).

    `open_messages` are this customer's messages that have not gone yet. Only those created
    at or before the event are cancelled: an event does not reach forward to mail queued
    after it.
    """
    created: list[Message] = []
    skipped: list[Skipped] = []
    cancelled: list[Cancellation] = []
    by_name = {pb.name: pb for pb in rules.playbooks}
    for message in open_messages:
        if message.created_at is None or message.created_at > event.at:
            continue
        playbook = by_name.get(message.playbook or "")
        if playbook is not None and event.type in playbook.cancel_on:
            cancelled.append(Cancellation(message.id, event, playbook.name))
            continue
        rule, failed = _cancelling_rule(event, message, customer, rules, history, last_contact)
        if failed is not None:
            skipped.append(failed)
        if rule is not None:
            cancelled.append(Cancellation(message.id, event, rule.name, "cancel rule"))
    for playbook in rules.playbooks:
        if event.type not in playbook.on:
            continue
        if _in_cooldown(playbook, runs, event.at):
            skipped.append(Skipped(playbook.name, f"in its {playbook.name} cooldown"))
            continue
        ok, error = _when(playbook, customer, history, last_contact or {}, event.at, event)
        if error is not None:
            skipped.append(Skipped(playbook.name, error))
        if not ok:
            continue
        mid = f"pb:{playbook.name}:{event.id}"
        data = {"event": dict(event.data), "event_type": event.type}
        created.append(_message(playbook, customer, mid, event.at, f"event {event.id}", data))
    return Fired(tuple(created), tuple(cancelled), tuple(skipped))


def _cancelling_rule(
    event: Event,
    message: Message,
    customer: Customer,
    rules: Rules,
    history: Sequence[Sent],
    last_contact: Mapping[str, datetime] | None,
) -> tuple[CancelRule | None, Skipped | None]:
    """The first cancel rule that cancels this message on this event. Transactional mail,
    alerts to an account owner and touches recorded from elsewhere are never cancelled by a
    rule: the first was asked for, the others are not the customer's mail to stop. A `when`
    that fails cancels nothing (the message goes through the rules as before) and says why."""
    if message.transactional or message.to is not None or message.kind is not MessageKind.SUBMITTED:
        return None, None
    for rule in rules.cancel:
        if event.type not in rule.on or not rule.filter.matches(message):
            continue
        if rule.when is None:
            return rule, None
        scope = make_scope(
            customer, history, last_contact or {}, event.at, message=message, event=event
        )
        try:
            if rule.when.evaluate(scope):
                return rule, None
        except ExpressionError as exc:
            return None, Skipped(rule.name, f"{rule.name} failed on {message.id}: {exc}")
    return None, None


def sweep_period(playbook: Playbook, at: datetime) -> datetime:
    """The start of the sweep period holding `at`: one id per customer per period, whoever
    sweeps and however often."""
    assert playbook.every is not None
    periods = (at - _EPOCH) // playbook.every
    return _EPOCH + periods * playbook.every


def sweep(
    customer: Customer,
    playbook: Playbook,
    period: datetime,
    *,
    history: Sequence[Sent] = (),
    last_contact: Mapping[str, datetime] | None = None,
    runs: Sequence[PlaybookRun] = (),
) -> Fired:
    """A swept playbook (`every`) for one customer, as of the start of one of its periods:
    a sweep happens once a period, as of its start, whenever the pass that runs it comes,
    so the check-in it makes is the same whoever sweeps and when."""
    if _in_cooldown(playbook, runs, period):
        return Fired()
    ok, error = _when(playbook, customer, history, last_contact or {}, period, None)
    skipped = (Skipped(playbook.name, error),) if error is not None else ()
    if not ok:
        return Fired(skipped=skipped)
    mid = f"pb:{playbook.name}:{customer.id}:{period:%Y%m%dT%H%M}"
    origin = f"sweep {playbook.name} at {period:%Y-%m-%d %H:%M} UTC"
    return Fired((_message(playbook, customer, mid, period, origin, {}),), (), skipped)


def swept(rules: Rules) -> tuple[Playbook, ...]:
    """The playbooks a sweep runs: those with a period (`every`)."""
    return tuple(p for p in rules.playbooks if p.every is not None and p.every > timedelta(0))


def next_sweep(rules: Rules, after: datetime) -> datetime | None:
    """When the next sweep period of any playbook begins, after `after`."""
    starts = [sweep_period(p, after) + _every(p) for p in swept(rules)]
    return min(starts) if starts else None


def _every(playbook: Playbook) -> timedelta:
    assert playbook.every is not None
    return playbook.every
