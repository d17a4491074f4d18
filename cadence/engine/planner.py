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
   planned together (`placing`).

A `CustomerPlanner` holds one customer's plan as it is made: its decisions, its emails, the
moments it wants to be planned again, and its ledger as each limit counts it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from functools import cached_property
from zoneinfo import ZoneInfo

from cadence.engine import explain
from cadence.engine.holds import limit_condition_failed, next_look, waiting
from cadence.engine.limits import (
    OWN_CAP,
    Counted,
    PointSet,
    counting,
    own_cap,
    own_cap_points,
)
from cadence.engine.merge import Candidate, Unit, form_units
from cadence.engine.placing import place
from cadence.engine.scope import ScopeFactory
from cadence.engine.suppress import by_rules, reachability
from cadence.engine.windows import for_country, next_open, window_for, zone
from cadence.model import CustomerContext, Decision, Email, Message, Plan, Sent, Status
from cadence.rules.calendars import CUSTOMER, country_of
from cadence.rules.model import Limit, Rules, Scope, SendWindow


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


#: the statuses of a message kept back from going, whose reason an expiry repeats
_KEPT_BACK = frozenset({Status.DEFERRED, Status.HELD})


class CustomerPlanner:
    """One customer's plan as it is made: decisions, emails, wake-ups, the ledger as counted."""

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

    def limits_of(self, unit: Unit) -> list[tuple[Limit, PointSet]]:
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
                self.suppress(message, ready, blocked.rule, blocked.reason)
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
                    self.suppress(message, ready, verdict.rule, verdict.reason)
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
        rule: str | None = None
        counted: tuple[str, ...] = ()
        if before is not None and before.status in _KEPT_BACK:
            # what kept it back (a limit or a hold deferring it; a rule whose condition failed,
            # windows that never open, holding it) is why it expired
            rule, counted = before.rule, before.counted
            reason = f"{reason} (the last plan: {before.reason})"
        self.decide(message, Status.EXPIRED, reason, rule=rule, counted=counted, final=True)

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

    def suppress(
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
    planners = [
        CustomerPlanner(c, rules, now, _zone(c, default_timezone), account) for c in contexts
    ]
    place([(p, u) for p in planners for u in p.prepare()])
    return [p.finish() for p in planners]


def plan_customer(
    ctx: CustomerContext, rules: Rules, now: datetime, default_timezone: str = "UTC"
) -> Plan:
    """Decide every open message of one customer as of `now`."""
    if now.tzinfo is None:
        raise ValueError("plan_customer needs an aware `now`")
    account = _Account((ctx,), rules, zone(default_timezone))
    planner = CustomerPlanner(ctx, rules, now, _zone(ctx, default_timezone), account)
    place([(planner, u) for u in planner.prepare()])
    return planner.finish()
