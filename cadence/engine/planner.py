"""`plan_customer`: one customer's open messages in, one decision each and the emails out;
`plan_account`: the same for customers whose mail a limit of account scope counts together.

Pure: no clock, no I/O. The same contexts, rules and time always give the same plans.

The order of work:
1. messages past their `expires_at` expire; internal owner alerts and transactional mail go at
   once (never capped, delayed, merged or suppressed by fatigue rules); the customer's own
   unsubscribes, bounces and spam reports suppress what they cover;
2. suppress rules, in the order the messages would go (so the later of two redundant ones is
   the one suppressed);
3. each survivor's earliest time inside its send window; merge rules cluster them into units;
4. units are placed one at a time, earliest feasible slot first (the higher priority wins a
   tie, then the lead message's id), each limit checked against the ledger and the units
   placed before it: the customer's own, and for a limit of account scope every customer's
   planned together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from cadence.engine import explain
from cadence.engine.holds import limit_condition_failed, next_look, waiting
from cadence.engine.limits import (
    OWN_CAP,
    Blocked,
    Counted,
    PointSet,
    check,
    counting,
    own_cap,
    own_cap_points,
)
from cadence.engine.merge import Candidate, Unit, form_units
from cadence.engine.scope import ScopeFactory
from cadence.engine.suppress import by_rules, reachability
from cadence.engine.windows import for_country, next_open, next_open_all, window_for, zone
from cadence.model import CustomerContext, Decision, Email, Message, Plan, Sent, Status
from cadence.rules.calendars import CUSTOMER, country_of
from cadence.rules.model import Limit, Over, Rules, Scope, SendWindow

_STEP = timedelta(seconds=1)
_MAX_STEPS = 1000


def email_id(member_ids: Iterable[str]) -> str:
    """Stable id of the email made of these messages: re-planning the same members yields the
    same email, so a rebuilt plan never creates a second digest for the same messages."""
    digest = hashlib.sha256("\x1f".join(sorted(member_ids)).encode()).hexdigest()
    return f"e-{digest[:16]}"


class _Account:
    """What the customers planned together share: the account-scope limits' points (the
    account's ledger, then every email placed for any of them), the zone their calendar
    periods are counted in, which message leads each placed email (for `won_by`), and the
    names of the emails placed (for reasons).

    An account's people may live in several zones, and a calendar day cannot be each one's
    own for a count they share: an account-scope calendar limit counts the setup's days
    (`default_timezone`)."""

    def __init__(self, contexts: Sequence[CustomerContext], rules: Rules, tz: ZoneInfo) -> None:
        self.contexts, self.rules, self.tz = contexts, rules, tz
        self.points: dict[str, PointSet] = {}
        self.placed_lead: dict[str, str] = {}  # email id -> its lead message
        self.planned = explain.Planned()
        self._ledger: list[Counted] | None = None

    def account_points(self, limit: Limit) -> PointSet:
        found = self.points.get(limit.name)
        if found is None:
            if self._ledger is None:
                # every customer's own ledger and what the contexts know of the rest of the
                # account, each email once (a co-planned customer's email is in its own
                # history and in its peers' account history)
                seen: dict[str, Sent] = {}
                for ctx in self.contexts:
                    for sent in (*ctx.history, *ctx.account_history):
                        seen.setdefault(sent.id, sent)
                self._ledger = counting(seen.values(), self.rules)
            key = id(limit)
            found = self.points[limit.name] = PointSet(
                [(at, sent_id) for at, sent_id, limits in self._ledger if key in limits]
            )
        return found


class _Planner:
    def __init__(
        self,
        ctx: CustomerContext,
        rules: Rules,
        now: datetime,
        tz: ZoneInfo,
        account: _Account,
    ):
        self.ctx, self.rules, self.now, self.tz = ctx, rules, now, tz
        self.account = account
        self.decisions: dict[str, Decision] = {}
        self.emails: list[Email] = []
        self.wakeups: list[datetime] = []
        self.labels = explain.Labels(ctx, self.account.planned)
        self.scopes = ScopeFactory(ctx.customer, ctx.history, ctx.last_contact)
        self._points: dict[str, PointSet] = {}  # built when a unit first meets the limit
        most = ctx.customer.reach.max_per_week
        self.own_cap = own_cap(most) if most is not None else None
        # the customer's own ledger with the limits each email counts against (by id)
        self._own: list[Counted] | None = None
        self.placed_lead = self.account.placed_lead  # email id -> lead message, for `won_by`

    @cached_property
    def country(self) -> str | None:
        """Whose holidays shut a window of `holidays: customer` (none: no holidays); read
        only for customers such a window applies to."""
        return country_of(self.ctx.customer.attributes.get("country"))

    # -- the ledger as each limit sees it ---------------------------------------------------

    def points(self, limit: Limit) -> PointSet:
        if limit.scope == Scope.ACCOUNT:
            return self.account.account_points(limit)
        if limit is self.own_cap:
            found = self._points.get(OWN_CAP)
            if found is None:
                found = self._points[OWN_CAP] = own_cap_points(self.ctx.history)
            return found
        found = self._points.get(limit.name)
        if found is None:
            key = id(limit)
            if self._own is None:
                self._own = counting(self.ctx.history, self.rules)
            found = self._points[limit.name] = PointSet(
                [(at, sent_id) for at, sent_id, limits in self._own if key in limits]
            )
        return found

    def _limits_of(self, unit: Unit) -> list[tuple[Limit, PointSet]]:
        """The limits the unit's members match and that apply to this customer (a limit's
        `when`), in rule order, each with its points."""
        if unit.limits is None:
            applicable = self.rules.index.applicable
            if len(unit.members) == 1:
                limits: list[Limit] = list(applicable(unit.members[0].message).limits)
            else:
                ids = set().union(*(applicable(c.message).limit_ids for c in unit.members))
                limits = [lim for lim in self.rules.limits if id(lim) in ids]
            unit.limits = [(lim, self.points(lim)) for lim in limits if self._limit_applies(lim)]
            if self.own_cap is not None:  # the customer's own, after the team's
                unit.limits.append((self.own_cap, self.points(self.own_cap)))
        return unit.limits

    # -- decisions --------------------------------------------------------------------------

    def decide(
        self,
        message: Message,
        status: Status,
        reason: str,
        *,
        send_at: datetime | None = None,
        email_id: str | None = None,
        rule: str | None = None,
        counted: tuple[str, ...] = (),
        won_by: str | None = None,
        next_allowed: datetime | None = None,
        final: bool = False,
    ) -> None:
        self.decisions[message.id] = Decision(
            message_id=message.id,
            status=status,
            reason=reason,
            send_at=send_at,
            email_id=email_id,
            rule=rule,
            counted=counted,
            won_by=won_by,
            next_allowed=next_allowed,
            rules_version=self.rules.version,
            final=final,
        )

    def add_email(
        self,
        unit_members: list[Message],
        at: datetime,
        *,
        merge_rule: str | None = None,
        template: str | None = None,
        to_owner: bool = False,
    ) -> Email:
        lead = unit_members[0]
        ids = tuple(m.id for m in unit_members)
        email = Email(
            id=email_id(ids),
            customer_id=self.ctx.customer.id,
            send_at=at,
            members=ids,
            role=lead.role,
            category=lead.category,
            transactional=all(m.transactional for m in unit_members),
            merge_rule=merge_rule,
            template=template,
            to_owner=to_owner,
        )
        self.emails.append(email)
        if at > self.now:
            self.wakeups.append(at)
        return email

    # -- the steps --------------------------------------------------------------------------

    def prepare(self) -> list[Unit]:
        """Decide what needs no slot (expired, transactional, suppressed, held) and return
        the units the limits are to place."""
        candidates: list[Candidate] = []
        planned_before: list[tuple[datetime, Message]] = []
        for message in sorted(self.ctx.pending, key=self._order):
            ready = max(message.send_after or self.now, self.now)
            expires = message.expires(self.rules.max_delay, self.now)
            if expires <= self.now:
                self._expired(message, expires)
                continue
            blocked = reachability(self.ctx, message)
            if blocked is not None:
                self._suppress(message, ready, blocked.rule, blocked.reason)
                continue
            if message.to == "owner" or message.transactional:
                email = self.add_email([message], ready, to_owner=message.to == "owner")
                # a transactional message dated later (a renewal receipt for next week) goes at
                # its own send_after, not at once; the reason says so also when written by the
                # pass at that very moment, since preview shows that pass's decision
                later = message.send_after is not None and message.send_after >= self.now
                when = "at its own send time (send_after)" if later else "at once"
                why = (
                    "an internal alert to the account owner: never capped"
                    if message.to == "owner"
                    else f"transactional: goes {when}, outside every fatigue rule"
                )
                self.decide(
                    message,
                    Status.SCHEDULED,
                    f"{why}; {explain.local(ready, self.tz)}",
                    send_at=ready,
                    email_id=email.id,
                )
                planned_before.append((ready, message))
                continue
            verdict = by_rules(self.ctx, self.rules, message, ready, planned_before, self.scopes)
            if verdict is not None:
                if verdict.held:
                    self.decide(message, Status.HELD, verdict.reason, rule=verdict.rule)
                else:
                    self._suppress(message, ready, verdict.rule, verdict.reason)
                continue
            window = window_for(message, self.rules)
            if window is not None and window.holidays == CUSTOMER:
                window = for_country(window, self.country)
            verdict = waiting(self.rules, message, ready, self.scopes)
            if verdict is None:
                verdict = limit_condition_failed(self.rules, message, self._limit_applies)
            if verdict is not None:
                if verdict.held:
                    self.decide(message, Status.HELD, verdict.reason, rule=verdict.rule)
                else:
                    self._wait(message, ready, window, verdict.rule, verdict.reason)
                continue
            base = next_open(ready, window, self.tz)
            if base is None:
                self.decide(message, Status.HELD, "its send window never opens", rule=None)
                continue
            candidates.append(
                Candidate(message, ready, expires, self.rules.priority_of(message), window, base)
            )
            planned_before.append((ready, message))
        return form_units(candidates, self.rules, self.tz)

    def finish(self) -> Plan:
        future = [t for t in self.wakeups if t > self.now]
        return Plan(
            customer_id=self.ctx.customer.id,
            as_of=self.now,
            emails=tuple(sorted(self.emails, key=lambda e: (e.send_at, e.id))),
            decisions=tuple(self.decisions[m.id] for m in self.ctx.pending),
            next_plan_at=min(future) if future else None,
        )

    def _expired(self, message: Message, expires: datetime) -> None:
        """Its time ran out. What held it back until then, as the last plan said, stays
        named: the rule, what it counted and why."""
        before = self.ctx.previous.get(message.id)
        if before is not None and before.status == Status.EXPIRED:
            self.decisions[message.id] = replace(
                before, final=True, rules_version=self.rules.version
            )
            return
        reason = f"its expires_at {explain.local(expires, self.tz)} passed before it could go"
        rule = None
        if before is not None and before.rule is not None and before.status == Status.DEFERRED:
            rule, reason = before.rule, f"{reason} (the last plan: {before.reason})"
        self.decide(
            message,
            Status.EXPIRED,
            reason,
            rule=rule,
            counted=before.counted if rule and before else (),
            final=True,
        )

    def _wait(
        self,
        message: Message,
        ready: datetime,
        window: SendWindow | None,
        rule: str,
        reason: str,
    ) -> None:
        """A hold rule keeps it back: `deferred`, naming the rule and its condition, with
        no time yet. The customer is planned again when it changes (an event, new mail) and
        at the next opening of the message's send window, and the condition is asked again
        then."""
        opened = next_look(max(ready, self.now), window, self.tz)
        if opened is None:
            self.decide(message, Status.HELD, "its send window never opens", rule=None)
            return
        self.wakeups.append(opened)
        self.decide(
            message,
            Status.DEFERRED,
            f"{reason}; asked again when the customer changes, and at "
            f"{explain.local(opened, self.tz)}",
            rule=rule,
        )

    def _limit_applies(self, limit: Limit) -> bool:
        """Whether a limit applies to this customer: its `when`, as of the plan's time."""
        if limit.when is None:
            return True
        return bool(self.scopes.customer_only(limit.when, self.now))

    def _order(self, message: Message) -> tuple[datetime, int, str]:
        return (message.send_after or self.now, -self.rules.priority_of(message), message.id)

    def _suppress(
        self,
        message: Message,
        ready: datetime,
        rule: str,
        reason: str,
        counted: tuple[str, ...] = (),
    ) -> None:
        final = ready <= self.now
        if not final:
            self.wakeups.append(ready)  # looked at again when it would have gone
        self.decide(message, Status.SUPPRESSED, reason, rule=rule, counted=counted, final=final)

    # -- placing units under the limits -----------------------------------------------------

    def _slot(self, unit: Unit) -> tuple[datetime | None, list[Blocked]]:
        """The earliest time every rule allows this unit, and what pushed it there."""
        limits, tz = self._limits_of(unit), self.tz
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
                    lim, points, t, self.account.tz if lim.scope is Scope.ACCOUNT else tz
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

    def _commit(self, unit: Unit, t: datetime, blocks: list[Blocked]) -> None:
        ordered = unit.members
        if len(ordered) > 1:
            ordered = sorted(ordered, key=lambda c: (-c.priority, c.base, c.message.id))
        messages = [c.message for c in ordered]
        merged = len(messages) > 1
        email = self.add_email(
            messages,
            t,
            merge_rule=unit.rule.name if unit.rule else None,
            template=unit.rule.template if unit.rule and merged else None,
        )
        self.placed_lead[email.id] = messages[0].id
        for _, points in self._limits_of(unit):
            points.add(t, email.id)
        self.labels.add_email(email, messages)
        first = blocks[-1] if blocks else None  # the block that settled the final time
        counted = first.counted if first else ()
        won_by = None
        for i in counted:  # most commits were blocked by nothing: no generator for them
            if i in self.placed_lead:
                won_by = self.placed_lead[i]
                break
        when = explain.local(t, self.tz)
        held = explain.held(first, None, self.tz, self.labels) if first else ""
        for c in ordered:
            window_note = explain.window_note(c, t, self.tz) if not first else ""
            mine = c.message
            other_won = won_by if won_by != mine.id else None
            if merged:
                others = ", ".join(m.id for m in messages if m.id != mine.id)
                rule = unit.rule.name if unit.rule else None
                status = Status.MERGED
                reason = (
                    f"merged by {rule} with {others} into one email at {when}{held}{window_note}"
                )
            elif first:
                rule, status, reason = first.limit.name, Status.DEFERRED, f"held until {when}{held}"
            else:
                digest = f" (waits for the {unit.rule.name} digest)" if unit.rule else ""
                rule = unit.rule.name if unit.rule else None
                status, reason = Status.SCHEDULED, f"goes {when}{digest}{window_note}"
            self.decide(
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

    def _drop(self, unit: Unit, block: Blocked) -> None:
        why = explain.held(block, None, self.tz, self.labels)
        for c in unit.members:
            self._suppress(
                c.message, c.ready, block.limit.name, f"dropped (over: drop){why}", block.counted
            )

    def _expire(self, c: Candidate, t: datetime, blocks: list[Blocked]) -> None:
        block = blocks[-1] if blocks else None
        final = c.expires <= self.now
        if not final:
            self.wakeups.append(c.expires)
        why = explain.held(block, t, self.tz, self.labels) if block else ""
        self.decide(
            c.message,
            Status.EXPIRED,
            f"cannot go before it expires at {explain.local(c.expires, self.tz)}{why}",
            rule=block.limit.name if block else None,
            counted=block.counted if block else (),
            next_allowed=t,
            final=final,
        )


Entry = tuple[_Planner, Unit]


def _place(entries: list[Entry]) -> None:
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
                slots[id(u)] = planner._slot(u)
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
            planner._drop(unit, blocks[-1])
            continue
        if t > unit.expires:
            late = [c for c in unit.members if c.expires < t]
            for c in late:
                planner._expire(c, t, blocks)
            rest = [c for c in unit.members if c.expires >= t]
            if rest:  # what is left once the members that expire first are gone
                pending.append((planner, Unit(rest, max(c.base for c in rest), unit.rule)))
            continue
        planner._commit(unit, t, blocks)
        touched = {id(points) for _, points in planner._limits_of(unit)}
        for other, u in pending:
            if any(id(points) in touched for _, points in other._limits_of(u)):
                slots.pop(id(u), None)


def _zone(ctx: CustomerContext, default_timezone: str) -> ZoneInfo:
    return zone(ctx.customer.timezone or default_timezone)


def plan_account(
    contexts: Sequence[CustomerContext],
    rules: Rules,
    now: datetime,
    default_timezone: str = "UTC",
) -> list[Plan]:
    """Decide every open message of customers planned together as of `now`: the customers of
    one account, whose account-scope limits count each other's mail. Their units are placed
    in one order (earliest slot, then priority, then message id), so the plans do not depend
    on which customer is listed first. One plan per context, in the contexts' order."""
    if now.tzinfo is None:
        raise ValueError("plan_account needs an aware `now`")
    if len(contexts) == 1:
        return [plan_customer(contexts[0], rules, now, default_timezone)]
    account = _Account(contexts, rules, zone(default_timezone))
    planners = [_Planner(c, rules, now, _zone(c, default_timezone), account) for c in contexts]
    _place([(p, u) for p in planners for u in p.prepare()])
    return [p.finish() for p in planners]


def plan_customer(
    ctx: CustomerContext, rules: Rules, now: datetime, default_timezone: str = "UTC"
) -> Plan:
    """Decide every open message of one customer as of `now`."""
    if now.tzinfo is None:
        raise ValueError("plan_customer needs an aware `now`")
    account = _Account((ctx,), rules, zone(default_timezone))
    planner = _Planner(ctx, rules, now, _zone(ctx, default_timezone), account)
    _place([(planner, u) for u in planner.prepare()])
    return planner.finish()
