"""The engine over virtual time for one customer, sending nothing: what `simulate` runs.

It is the daemon's loop with the clock replaced: plan as of t, jump to the next thing that
happens (an email due, an event), "send" what is due into the history, apply the event
(reachability, attributes, playbooks), plan again. Pure: inputs in, emails and decisions out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from cadence.engine.planner import plan_customer
from cadence.engine.playbooks import PlaybookRun, on_event, sweep, sweep_times
from cadence.model import (
    Customer,
    CustomerContext,
    Decision,
    Email,
    Event,
    Message,
    Reachability,
    Sent,
    Status,
)
from cadence.rules.model import Rules

_MAX_STEPS = 10_000


@dataclass(frozen=True, slots=True)
class Outcome:
    customer_id: str
    emails: tuple[Email, ...]  # the emails that went, in order
    decisions: tuple[Decision, ...]  # the last decision on every message
    messages: tuple[Message, ...]  # every message considered, including playbooks'


def apply_event(customer: Customer, event: Event) -> Customer:
    """The customer as an event leaves it (reachability and attributes)."""
    reach = customer.reach
    cats = event.data.get("categories") if isinstance(event.data, dict) else None
    cats = frozenset(cats or ())
    if event.type == "unsubscribed":
        reach = (
            replace(reach, unsubscribed_categories=reach.unsubscribed_categories | cats)
            if cats
            else replace(reach, unsubscribed_all=True)
        )
    elif event.type == "resubscribed":
        reach = (
            replace(reach, unsubscribed_categories=reach.unsubscribed_categories - cats)
            if cats
            else Reachability(hard_bounced=reach.hard_bounced, spam_reported=reach.spam_reported)
        )
    elif event.type == "bounced":
        if event.data.get("kind") == "hard":
            reach = replace(reach, hard_bounced=True)
        else:
            reach = replace(reach, soft_bounces=reach.soft_bounces + 1)
    elif event.type == "spam_reported":
        reach = replace(reach, spam_reported=True)
    attributes = {**customer.attributes, **event.attributes}
    return replace(customer, reach=reach, attributes=attributes)


def simulate_customer(
    customer: Customer,
    candidates: Sequence[Message],
    history: Sequence[Sent],
    events: Sequence[Event],
    rules: Rules,
    start: datetime,
    end: datetime,
    default_timezone: str = "UTC",
) -> Outcome:
    pending: list[Message] = sorted(candidates, key=lambda m: (m.send_after or start, m.id))
    past: list[Sent] = sorted(history, key=lambda s: s.at)
    queue = sorted((e for e in events if start <= e.at <= end), key=lambda e: (e.at, e.id))
    sweeps = sorted({t for p in rules.playbooks for t in sweep_times(p, start, end)})
    sent_emails: list[Email] = []
    last: dict[str, Decision] = {}
    everything: dict[str, Message] = {m.id: m for m in pending}
    runs: list[PlaybookRun] = []
    t = start
    for _ in range(_MAX_STEPS):
        ctx = CustomerContext(customer=customer, pending=tuple(pending), history=tuple(past))
        plan = plan_customer(ctx, rules, t, default_timezone)
        last.update({d.message_id: d for d in plan.decisions})
        # a final decision (suppressed or expired once its time came) is not revisited, as
        # in the store: the message leaves the pending set
        settled = {d.message_id for d in plan.decisions if d.final}
        if settled:
            pending = [m for m in pending if m.id not in settled]
        due = min((e.send_at for e in plan.emails), default=None)
        next_event = queue[0].at if queue else None
        next_sweep = sweeps[0] if sweeps else None
        # the plan's own next moment too: a provisional decision (a suppression whose message
        # is not due yet) must be looked at when its time comes, as the daemon does
        wake = plan.next_plan_at
        nxt = min((x for x in (due, next_event, next_sweep, wake) if x is not None), default=None)
        if nxt is None or nxt > end:
            break
        t = max(nxt, t)
        if next_event is not None and next_event <= t:
            event = queue.pop(0)
            customer = apply_event(customer, event)
            fired = on_event(
                event,
                customer,
                rules,
                history=past,
                runs=runs,
                open_playbook_messages=[m for m in pending if m.playbook],
            )
            cancelled = {c.message_id: c for c in fired.cancellations}
            for mid, c in cancelled.items():
                last[mid] = Decision(
                    message_id=mid,
                    status=Status.CANCELLED,
                    reason=f"cancelled by event {c.event.id} ({c.event.type}) under playbook "
                    f"{c.playbook}",
                    event=c.event.id,
                    rules_version=rules.version,
                    final=True,
                )
            pending = [m for m in pending if m.id not in cancelled]
            _add(fired.messages, pending, everything, runs, t)
            continue
        if next_sweep is not None and next_sweep <= t and (due is None or next_sweep < due):
            sweeps.pop(0)
            fired = sweep(customer, rules, t, history=past, runs=runs)
            _add(fired.messages, pending, everything, runs, t)
            continue
        for email in plan.emails:
            if email.send_at <= t:
                members = tuple(everything[i] for i in email.members)
                past.append(Sent(email.id, email.send_at, customer.id, members))
                sent_emails.append(email)
                gone = set(email.members)
                pending = [m for m in pending if m.id not in gone]
    decisions = tuple(last[m] for m in everything if m in last)
    return Outcome(customer.id, tuple(sent_emails), decisions, tuple(everything.values()))


def _add(
    new: Sequence[Message],
    pending: list[Message],
    everything: dict[str, Message],
    runs: list[PlaybookRun],
    t: datetime,
) -> None:
    for m in new:
        if m.id in everything:
            continue
        pending.append(m)
        everything[m.id] = m
        runs.append(PlaybookRun(m.playbook or "", t))
