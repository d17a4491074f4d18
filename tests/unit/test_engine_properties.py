"""Invariants of the planner, hammered by Hypothesis over random rules, ledgers and messages.

- no limit is exceeded in any window by the emails the plan adds, and no min_gap is broken
- no non-transactional email goes outside the send window of any of its members
- no suppressed address is mailed (hard bounce, spam report, unsubscribes)
- no transactional message is held back
- every message ends in exactly one status with a reason; planned emails and decisions agree
- a merged email holds only members matching its rule, none before its own send_after
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cadence.engine import plan_customer
from cadence.engine.windows import window_for
from cadence.model import PLANNED, Message, Reachability, Sent, Status
from cadence.rules.model import Filter, Limit, Over, Rules, Scope, SendWindow

from .engine_helpers import (
    NOW,
    context,
    customer,
    limit,
    merge,
    msg,
    recorded,
    rules,
    suppress,
    window,
)

ROLES = ["support", "success", "sales", "marketing", "product", "billing"]
CATS = ["onboarding", "tip", "announcement", "offer", "check-in", "receipt"]
TOPICS = [None, "feature:reports", "feature:sso", "pricing"]
ZONES = ["America/New_York", "Europe/Berlin", "Asia/Tokyo", "Australia/Sydney", "UTC"]
H = timedelta(hours=1)

filters = st.builds(
    Filter,
    roles=st.none() | st.frozensets(st.sampled_from(ROLES), min_size=1, max_size=3),
    categories=st.none() | st.frozensets(st.sampled_from(CATS), min_size=1, max_size=3),
)


@st.composite
def limits(draw: st.DrawFn, i: int) -> Limit:
    kind = draw(st.sampled_from(["rolling", "gap", "both"]))
    kw: dict[str, object] = {"filter": draw(filters), "over": draw(st.sampled_from(list(Over)))}
    if kind in ("rolling", "both"):
        kw["max"] = draw(st.integers(1, 4))
        kw["per"] = draw(st.sampled_from([H * 6, H * 24, H * 72, H * 168]))
    if kind in ("gap", "both"):
        kw["min_gap"] = draw(st.sampled_from([H, H * 4, H * 20]))
    return limit(f"limit-{i}", **kw)


@st.composite
def rule_sets(draw: st.DrawFn) -> Rules:
    n = draw(st.integers(0, 3))
    lims = tuple(draw(limits(i)) for i in range(n))
    windows = []
    if draw(st.booleans()):
        windows.append(
            window(frozenset(range(7)), "07:00", "21:00", Filter(roles=frozenset({"support"})))
        )
    if draw(st.booleans()):
        days = draw(st.frozensets(st.integers(0, 6), min_size=1))
        start, end = draw(
            st.sampled_from([("09:00", "17:00"), ("08:00", "20:00"), ("22:00", "06:00")])
        )
        windows.append(window(days, start, end))
    merges = ()
    if draw(st.booleans()):
        merges = (
            merge(
                "digest",
                draw(filters),
                draw(st.sampled_from([H * 12, H * 48])),
                draw(st.integers(2, 4)),
            ),
        )
    sup = ()
    if draw(st.booleans()):
        sup = (suppress("same-topic", same="topic", within=H * 24 * 14),)
    return rules(limits=lims, send_windows=tuple(windows), merge=merges, suppress=sup)


@st.composite
def messages(draw: st.DrawFn) -> list[Message]:
    n = draw(st.integers(1, 12))
    out = []
    for i in range(n):
        transactional = draw(st.booleans()) and draw(st.booleans())
        out.append(
            msg(
                f"m{i}",
                draw(st.sampled_from(ROLES)),
                draw(st.sampled_from(CATS)),
                H * draw(st.integers(-48, 24 * 14)),
                topic=draw(st.sampled_from(TOPICS)),
                transactional=transactional,
                priority=draw(st.none() | st.integers(0, 100)),
                expires_at=None if draw(st.booleans()) else NOW + H * draw(st.integers(1, 24 * 30)),
            )
        )
    return out


@st.composite
def histories(draw: st.DrawFn) -> tuple[Sent, ...]:
    n = draw(st.integers(0, 5))
    return tuple(
        recorded(
            f"h{i}",
            draw(st.sampled_from(ROLES)),
            NOW - H * draw(st.integers(1, 24 * 10)),
            category=draw(st.sampled_from(CATS)),
            topic=draw(st.sampled_from(TOPICS)),
        )
        for i in range(n)
    )


reaches = st.builds(
    Reachability,
    unsubscribed_all=st.booleans(),
    unsubscribed_categories=st.frozensets(st.sampled_from(CATS), max_size=2),
    hard_bounced=st.booleans(),
    spam_reported=st.booleans(),
) | st.just(Reachability())


def _inside(t: datetime, window: SendWindow | None, zone: ZoneInfo) -> bool:
    """Whether `t` falls in the window, read off the local clock (not the planner's code):
    its day is one of the window's and its time within the hours, an overnight window's
    early hours belonging to the day it began on."""
    if window is None:
        return True
    local = t.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if window.start == window.end:  # the whole day
        return local.weekday() in window.days
    if window.start < window.end:
        return local.weekday() in window.days and window.start <= clock < window.end
    if clock >= window.start:
        return local.weekday() in window.days
    return clock < window.end and (local.weekday() - 1) % 7 in window.days


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_sets(), messages(), histories(), reaches, st.sampled_from(ZONES))
def test_plan_invariants(
    r: Rules, pending: list[Message], history: tuple[Sent, ...], reach: Reachability, tz: str
) -> None:
    cust = customer(tz=tz, reach=reach)
    # expires_at never before send_after (the door rejects that)
    pending = [
        m
        if m.expires_at is None or m.send_after is None or m.expires_at > m.send_after
        else Message(**{**{f: getattr(m, f) for f in m.__dataclass_fields__}, "expires_at": None})
        for m in pending
    ]
    plan = plan_customer(context(*pending, history=history, customer_=cust), r, NOW)
    zone = ZoneInfo(tz)
    by_id = {m.id: m for m in pending}
    decided = {d.message_id: d for d in plan.decisions}

    # exactly one decision per message, each with a reason
    assert [d.message_id for d in plan.decisions] == [m.id for m in pending]
    assert all(d.reason for d in plan.decisions)

    # emails and decisions agree; a message is in at most one email
    seen: set[str] = set()
    for email in plan.emails:
        assert not seen & set(email.members)
        seen |= set(email.members)
        for mid in email.members:
            d = decided[mid]
            assert d.status in PLANNED and d.email_id == email.id and d.send_at == email.send_at
    assert {d.message_id for d in plan.decisions if d.status in PLANNED} == seen

    for email in plan.emails:
        members = [by_id[i] for i in email.members]
        for m in members:
            assert email.send_at >= max(m.send_after, NOW)  # never before its send_after
            expires = m.expires_at or m.send_after + r.max_delay
            assert email.send_at <= expires
        # suppressed addresses are never mailed
        assert not reach.hard_bounced
        if not email.transactional:
            assert not reach.spam_reported and not reach.unsubscribed_all
            assert not any(m.category in reach.unsubscribed_categories for m in members)
            # inside every member's send window
            for m in members:
                assert _inside(email.send_at, window_for(m, r), zone)
        if len(members) > 1:
            rule = next(mr for mr in r.merge if mr.name == email.merge_rule)
            assert all(rule.filter.matches(m) for m in members)

    # transactional mail is never held back (unless the address bounced)
    for m in pending:
        if m.transactional and not reach.hard_bounced:
            expires = m.expires_at or m.send_after + r.max_delay
            if expires > NOW:
                assert decided[m.id].status is Status.SCHEDULED
                assert decided[m.id].send_at == max(m.send_after, NOW)

    # no limit exceeded by what the plan adds, in any window
    for lim in r.limits:
        assert lim.scope == Scope.CUSTOMER
        points = [s.at for s in history if any(lim.filter.matches(x) for x in s.members)]
        new = [
            e.send_at
            for e in plan.emails
            if not e.transactional and any(lim.filter.matches(by_id[i]) for i in e.members)
        ]
        everything = sorted(points + new)
        for k, t in enumerate(new):
            others = points + new[:k] + new[k + 1 :]
            if lim.min_gap is not None:
                assert all(abs(t - o) >= lim.min_gap for o in others), lim
            if lim.max is not None and lim.per is not None:
                # every window [s, s + per) that holds t holds at most `max` emails
                for start in [t - lim.per + timedelta(microseconds=1), *everything]:
                    if start <= t < start + lim.per:
                        inside = [o for o in everything if start <= o < start + lim.per]
                        assert len(inside) <= lim.max, (lim, start, inside)
