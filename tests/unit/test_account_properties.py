"""Invariants of planning an account's customers together (`plan_account`), over random
accounts, rules and ledgers:

- no limit of the account's scope is exceeded in any window by the emails of all its
  customers (what they were sent, and what the plans add), and no calendar limit in any
  calendar day, week or month of the customer's own zone;
- the plans do not depend on the order the customers are listed in;
- planning the same ledger again gives the same emails (ids and times);
- planning again once the first emails went, as planned, leaves the rest where they were.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cadence.engine import plan_account
from cadence.engine.limits import calendar_period
from cadence.model import CustomerContext, Email, Message, Plan, Sent
from cadence.rules.model import CalendarUnit, Limit, Over, Rules, Scope

from .engine_helpers import NOW, customer, limit, merge, msg, recorded, rules, window
from .test_engine_properties import CATS, ROLES, TOPICS, ZONES, H, filters


@st.composite
def limits(draw: st.DrawFn, i: int) -> Limit:
    kw: dict[str, object] = {
        "filter": draw(filters),
        "over": draw(st.sampled_from(list(Over))),
        "scope": draw(st.sampled_from(list(Scope))),
        "max": draw(st.integers(1, 3)),
    }
    if draw(st.booleans()):
        kw["calendar"] = draw(st.sampled_from(list(CalendarUnit)))
        kw["per"] = {
            CalendarUnit.DAY: H * 24,
            CalendarUnit.WEEK: H * 168,
            CalendarUnit.MONTH: H * 24 * 31,
        }[kw["calendar"]]  # type: ignore[index]
    else:
        kw["per"] = draw(st.sampled_from([H * 6, H * 24, H * 72, H * 168]))
    return limit(f"limit-{i}", **kw)


@st.composite
def rule_sets(draw: st.DrawFn) -> Rules:
    lims = tuple(draw(limits(i)) for i in range(draw(st.integers(1, 3))))
    windows = (window(frozenset(range(5)), "09:00", "17:00"),) if draw(st.booleans()) else ()
    merges = ()
    if draw(st.booleans()):
        merges = (merge("digest", draw(filters), H * 24, 3),)
    return rules(limits=lims, send_windows=windows, merge=merges)


@st.composite
def accounts(draw: st.DrawFn) -> list[CustomerContext]:
    out = []
    for c in range(draw(st.integers(1, 4))):
        cid = f"c-{c}"
        pending = tuple(
            msg(
                f"{cid}-m{i}",
                draw(st.sampled_from(ROLES)),
                draw(st.sampled_from(CATS)),
                H * draw(st.integers(-24, 24 * 10)),
                customer_id=cid,
                topic=draw(st.sampled_from(TOPICS)),
                transactional=draw(st.integers(0, 5)) == 0,
                priority=draw(st.none() | st.integers(0, 100)),
            )
            for i in range(draw(st.integers(0, 6)))
        )
        history = tuple(
            _own(
                recorded(
                    f"{cid}-h{i}",
                    draw(st.sampled_from(ROLES)),
                    NOW - H * draw(st.integers(1, 24 * 10)),
                    category=draw(st.sampled_from(CATS)),
                ),
                cid,
            )
            for i in range(draw(st.integers(0, 3)))
        )
        who = replace(customer(cid, tz=draw(st.sampled_from(ZONES))), account="acme")
        out.append(CustomerContext(customer=who, pending=pending, history=history))
    # each customer sees what the others were sent
    return [
        replace(ctx, account_history=tuple(s for o in out if o is not ctx for s in o.history))
        for ctx in out
    ]


def _own(sent: Sent, cid: str) -> Sent:
    members = tuple(replace(m, customer_id=cid) for m in sent.members)
    return replace(sent, customer_id=cid, members=members)


def _emails(plans: list[Plan]) -> dict[str, list[tuple[str, datetime]]]:
    return {p.customer_id: [(e.id, e.send_at) for e in p.emails] for p in plans}


SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(rule_sets(), accounts())
def test_no_limit_is_exceeded_across_the_account(r: Rules, ctxs: list[CustomerContext]) -> None:
    plans = plan_account(ctxs, r, NOW)
    members: dict[str, Message] = {m.id: m for c in ctxs for m in c.pending}
    zones = {c.customer.id: ZoneInfo(c.customer.timezone or "UTC") for c in ctxs}
    UTC = ZoneInfo("UTC")
    for lim in r.limits:
        for ctx in ctxs:
            # what counts for this customer: its own, and with account scope everyone's
            scope = ctxs if lim.scope == Scope.ACCOUNT else [ctx]
            points = [
                s.at
                for c in scope
                for s in c.history
                if any(lim.filter.matches(m) for m in s.members)
            ]
            new = [
                e.send_at
                for p in plans
                if p.customer_id in {c.customer.id for c in scope}
                for e in p.emails
                if _counts(e, lim, members)
            ]
            mine = [
                e.send_at
                for p in plans
                if p.customer_id == ctx.customer.id
                for e in p.emails
                if _counts(e, lim, members)
            ]
            everything = sorted(points + new)
            for t in mine:
                if lim.calendar is not None:
                    # an account's calendar is the setup's (default_timezone: UTC here)
                    tz = UTC if lim.scope == Scope.ACCOUNT else zones[ctx.customer.id]
                    start, end = calendar_period(t, lim.calendar, tz)
                    inside = [o for o in everything if start <= o < end]
                    assert len(inside) <= (lim.max or 0), (lim, t, inside)
                else:
                    assert lim.per is not None
                    for start in [t - lim.per + timedelta(microseconds=1), *everything]:
                        if start <= t < start + lim.per:
                            inside = [o for o in everything if start <= o < start + lim.per]
                            assert len(inside) <= (lim.max or 0), (lim, start, inside)


def _counts(e: Email, lim: Limit, members: dict[str, Message]) -> bool:
    return not e.transactional and any(lim.filter.matches(members[i]) for i in e.members)


@SETTINGS
@given(rule_sets(), accounts(), st.randoms(use_true_random=False))
def test_the_plans_do_not_depend_on_the_order_of_the_customers(
    r: Rules, ctxs: list[CustomerContext], rnd: object
) -> None:
    shuffled = list(ctxs)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    a = {p.customer_id: p for p in plan_account(ctxs, r, NOW)}
    b = {p.customer_id: p for p in plan_account(shuffled, r, NOW)}
    assert a == b


@SETTINGS
@given(rule_sets(), accounts())
def test_planning_the_same_ledger_again_gives_the_same_emails(
    r: Rules, ctxs: list[CustomerContext]
) -> None:
    first = plan_account(ctxs, r, NOW)
    previous = {p.customer_id: {d.message_id: d for d in p.decisions} for p in first}
    again = plan_account([replace(c, previous=previous[c.customer.id]) for c in ctxs], r, NOW)
    assert _emails(again) == _emails(first)


@SETTINGS
@given(rule_sets(), accounts())
def test_at_the_next_moment_the_plan_stands(r: Rules, ctxs: list[CustomerContext]) -> None:
    """The pass at NOW sends what is due then and settles what is final; at the plans'
    next moment, planning again leaves every email not yet gone where it was.

    Without merge rules only: a message a limit holds back is ready again at each new plan,
    and may then fall within a digest's window of a later message and join it (fewer
    emails, later). That is why `preview` runs the passes over its horizon rather than
    reading one plan."""
    r = replace(r, merge=())
    first = plan_account(ctxs, r, NOW)
    moments = [p.next_plan_at for p in first if p.next_plan_at is not None]
    if not moments:
        return
    t = min(moments)
    went: dict[str, list[Sent]] = {c.customer.id: [] for c in ctxs}
    by_id = {m.id: m for c in ctxs for m in c.pending}
    for p in first:
        for e in p.emails:
            if e.send_at <= NOW:
                members = tuple(by_id[i] for i in e.members)
                went[p.customer_id].append(Sent(e.id, e.send_at, p.customer_id, members))
    gone = {m.id for sents in went.values() for s in sents for m in s.members}
    gone |= {d.message_id for p in first for d in p.decisions if d.final}
    previous = {p.customer_id: {d.message_id: d for d in p.decisions} for p in first}
    later = []
    for c in ctxs:
        history = (*c.history, *went[c.customer.id])
        others = tuple(s for o in ctxs if o is not c for s in (*o.history, *went[o.customer.id]))
        pending = tuple(m for m in c.pending if m.id not in gone)
        later.append(
            replace(
                c,
                pending=pending,
                history=history,
                account_history=others,
                previous=previous[c.customer.id],
            )
        )
    remaining = {
        cid: [(i, at) for i, at in emails if at > NOW] for cid, emails in _emails(first).items()
    }
    assert _emails(plan_account(later, r, t)) == remaining
