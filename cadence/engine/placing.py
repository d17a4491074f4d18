"""Units placed under the limits, one at a time: each in the earliest slot every rule allows
(`slot`), the higher priority first at the same slot, then the lead message's id (`place`).

A unit is one customer's message, or several a merge rule gathers into one email; the units
placed together are one customer's, or every customer's of an account planned together, whose
account-scope limits share their points. Each placement adds its point to the limits it
counts against, so a later unit sees it (`commit`). Pure, as the planner is.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cadence.engine import explain
from cadence.engine.limits import Blocked, check
from cadence.engine.merge import Candidate, Unit
from cadence.engine.windows import next_open_all
from cadence.model import Status
from cadence.rules.model import Over, Scope

if TYPE_CHECKING:
    from cadence.engine.planner import CustomerPlanner

_STEP = timedelta(seconds=1)
_MAX_STEPS = 1000


def slot(planner: CustomerPlanner, unit: Unit) -> tuple[datetime | None, list[Blocked]]:
    """The earliest time every rule allows this unit, and what pushed it there."""
    limits, tz = planner.limits_of(unit), planner.tz
    blocks: list[Blocked] = []
    t = unit.ready
    for step in range(_MAX_STEPS):
        if step or not unit.ready_open:
            opened = next_open_all(t, unit.windows, tz)
            if opened is None:
                return None, blocks
            t = opened
        for lim, points in limits:  # the first limit that blocks t, in rule order
            blocked = check(
                lim, points, t, planner.account.tz if lim.scope is Scope.ACCOUNT else tz
            )
            if blocked is not None:
                break
        else:
            return t, blocks
        blocks.append(blocked)
        if blocked.limit.over == Over.DROP or t > unit.expires:
            return t, blocks
        t = max(blocked.next_try, t + _STEP)
    return None, blocks


def commit(planner: CustomerPlanner, unit: Unit, t: datetime, blocks: list[Blocked]) -> None:
    """The unit goes at `t`: its email, its point on each limit it counts against, and each
    member's decision (merged, held until `t` by the last limit that blocked it, or scheduled)."""
    ordered = unit.members
    if len(ordered) > 1:
        ordered = sorted(ordered, key=lambda c: (-c.priority, c.base, c.message.id))
    messages = [c.message for c in ordered]
    merged = len(messages) > 1
    email = planner.add_email(
        messages,
        t,
        merge_rule=unit.rule.name if unit.rule else None,
        template=unit.rule.template if unit.rule and merged else None,
    )
    planner.placed_lead[email.id] = messages[0].id
    for _, points in planner.limits_of(unit):
        points.add(t, email.id)
    planner.labels.add_email(email, messages)
    first = blocks[-1] if blocks else None  # the block that settled the final time
    counted = first.counted if first else ()
    won_by = None
    for i in counted:  # most commits were blocked by nothing: no generator for them
        if i in planner.placed_lead:
            won_by = planner.placed_lead[i]
            break
    when = explain.local(t, planner.tz)
    held = explain.held(first, None, planner.tz, planner.labels) if first else ""
    for c in ordered:
        window_note = explain.window_note(c, t, planner.tz) if not first else ""
        mine = c.message
        other_won = won_by if won_by != mine.id else None
        if merged:
            others = ", ".join(m.id for m in messages if m.id != mine.id)
            rule = unit.rule.name if unit.rule else None
            status = Status.MERGED
            reason = f"merged by {rule} with {others} into one email at {when}{held}{window_note}"
        elif first:
            rule, status, reason = first.limit.name, Status.DEFERRED, f"held until {when}{held}"
        else:
            digest = f" (waits for the {unit.rule.name} digest)" if unit.rule else ""
            rule = unit.rule.name if unit.rule else None
            status, reason = Status.SCHEDULED, f"goes {when}{digest}{window_note}"
        planner.decide(
            mine,
            status,
            reason,
            rule=rule,
            send_at=t,
            email_id=email.id,
            counted=counted,
            won_by=other_won,
            next_allowed=t if first else None,
        )


def drop(planner: CustomerPlanner, unit: Unit, block: Blocked) -> None:
    """Over a limit whose `over` is `drop`: each member suppressed, naming the limit."""
    why = explain.held(block, None, planner.tz, planner.labels)
    for c in unit.members:
        planner.suppress(
            c.message, c.ready, block.limit.name, f"dropped (over: drop){why}", block.counted
        )


def expire(planner: CustomerPlanner, c: Candidate, t: datetime, blocks: list[Blocked]) -> None:
    """A member that cannot go before its `expires_at`: expired, naming what held it back."""
    block = blocks[-1] if blocks else None
    final = c.expires <= planner.now
    if not final:
        planner.wakeups.append(c.expires)
    why = explain.held(block, t, planner.tz, planner.labels) if block else ""
    planner.decide(
        c.message,
        Status.EXPIRED,
        f"cannot go before it expires at {explain.local(c.expires, planner.tz)}{why}",
        rule=block.limit.name if block else None,
        counted=block.counted if block else (),
        next_allowed=t,
        final=final,
    )


Entry = tuple["CustomerPlanner", Unit]


def place(entries: list[Entry]) -> None:
    """Place the units, one at a time, each in the earliest slot every rule allows (the
    higher priority first at the same slot): the units of one customer, or of every customer
    of an account planned together, whose account-scope limits share their points."""
    pending = list(entries)
    # A unit's slot depends only on the points of its limits: worked out again only when
    # a commit added a point to one of them, not for every unit after every placement.
    slots: dict[int, tuple[datetime | None, list[Blocked]]] = {}
    never: datetime | None = None
    while pending:
        for planner, u in pending:
            if id(u) not in slots:
                slots[id(u)] = slot(planner, u)
        if len(pending) == 1:
            entry = pending[0]
        else:
            if never is None:
                never = datetime.max.replace(tzinfo=pending[0][0].now.tzinfo)
            entry = min(
                pending,
                key=lambda e, slots=slots, never=never: (  # type: ignore[misc]
                    slots[id(e[1])][0] or never,
                    e[1].rank,
                ),
            )
        pending.remove(entry)
        planner, unit = entry
        t, blocks = slots.pop(id(unit))  # popped: a later unit may reuse its id
        if t is None:
            for c in unit.members:
                planner.decide(c.message, Status.HELD, "its send windows never open together")
            continue
        if blocks and blocks[-1].limit.over == Over.DROP:
            drop(planner, unit, blocks[-1])
            continue
        if t > unit.expires:
            late = [c for c in unit.members if c.expires < t]
            for c in late:
                expire(planner, c, t, blocks)
            rest = [c for c in unit.members if c.expires >= t]
            if rest:  # what is left once the members that expire first are gone
                pending.append((planner, Unit(rest, max(c.base for c in rest), unit.rule)))
            continue
        commit(planner, unit, t, blocks)
        touched = {id(points) for _, points in planner.limits_of(unit)}
        for other, u in pending:
            if any(id(points) in touched for _, points in other.limits_of(u)):
                slots.pop(id(u), None)
