"""The planner's meaning, one rule at a time, on hand-built contexts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cadence.engine import email_id, plan_customer
from cadence.engine.windows import next_open
from cadence.model import Reachability, Status
from cadence.rules.model import CalendarUnit, Over, Scope

from .engine_helpers import (
    NOW,
    WEEKDAYS,
    categories,
    context,
    customer,
    limit,
    merge,
    msg,
    recorded,
    roles,
    rules,
    suppress,
    window,
)

NY = ZoneInfo("America/New_York")
H = timedelta(hours=1)
D = timedelta(days=1)


def decisions(plan):  # type: ignore[no-untyped-def]
    return {d.message_id: d for d in plan.decisions}


def test_weekly_limit_defers_the_lower_priority_and_names_what_filled_it() -> None:
    r = rules(limits=(limit("weekly-total", max=2, per=7 * D),))
    hist = (recorded("crm-1", "success", NOW - 2 * D, human=True),)
    plan = plan_customer(
        context(
            msg("mkt-1", "marketing", "announcement", H),
            msg("cs-1", "success", "check-in", H),
            history=hist,
        ),
        r,
        NOW,
    )
    d = decisions(plan)
    assert d["cs-1"].status is Status.SCHEDULED  # success (70) beats marketing (10)
    assert d["cs-1"].send_at == NOW + H
    assert d["mkt-1"].status is Status.DEFERRED
    assert d["mkt-1"].rule == "weekly-total"
    assert d["mkt-1"].send_at == NOW - 2 * D + 7 * D  # when the CRM note leaves the window
    assert set(d["mkt-1"].counted) == {"crm-1", email_id(["cs-1"])}
    assert d["mkt-1"].won_by == "cs-1"
    assert "weekly-total already has 2 emails in 7d" in d["mkt-1"].reason


def test_transactional_neither_waits_nor_counts() -> None:
    r = rules(
        limits=(limit("one-a-week", max=1, per=7 * D),),
        send_windows=(window(WEEKDAYS, "09:00", "17:00"),),
    )
    hist = (recorded("crm-1", "sales", NOW - D),)
    receipt = msg("bill-1", "billing", "receipt", timedelta(0), transactional=True)
    plan = plan_customer(context(receipt, history=hist), r, NOW)
    d = decisions(plan)["bill-1"]
    assert d.status is Status.SCHEDULED and d.send_at == NOW  # 07:00 local, outside the window


def test_a_transactional_message_days_away_goes_at_its_own_time() -> None:
    receipt = msg("bill-2", "billing", "receipt", 3 * D, transactional=True)
    d = decisions(plan_customer(context(receipt), rules(), NOW))["bill-2"]
    assert d.status is Status.SCHEDULED and d.send_at == NOW + 3 * D
    assert d.reason == (
        "transactional: goes at its own send time (send_after), outside every fatigue rule; "
        "Thu 26 Nov 07:00 EST"
    )
    # planned at its very moment (what preview shows), it still goes at its own time
    d = decisions(plan_customer(context(receipt), rules(), NOW + 3 * D))["bill-2"]
    assert d.reason.startswith("transactional: goes at its own send time (send_after)")
    late = msg("bill-3", "billing", "receipt", -H, transactional=True)
    d = decisions(plan_customer(context(late), rules(), NOW))["bill-3"]
    assert d.send_at == NOW
    assert d.reason.startswith("transactional: goes at once, outside every fatigue rule")


def test_send_window_in_customer_timezone_across_dst() -> None:
    w = window(WEEKDAYS, "09:00", "17:00")
    # Friday 30 Oct 2026 22:00 UTC = 18:00 EDT -> next opening Mon 2 Nov 09:00 EST (after DST ends)
    t = datetime(2026, 10, 30, 22, 0, tzinfo=UTC)
    opened = next_open(t, w, NY)
    assert opened == datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
    # spring: Monday 9 March 2026 09:00 EDT = 13:00 UTC
    assert next_open(datetime(2026, 3, 7, 0, 0, tzinfo=UTC), w, NY) == datetime(
        2026, 3, 9, 13, 0, tzinfo=UTC
    )


def test_overnight_window() -> None:
    w = window(frozenset(range(7)), "22:00", "06:00")
    t = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # 22:00 EST on Sunday: open
    assert next_open(t, w, NY) == t
    t2 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # 07:00 EST: closed until 22:00
    assert next_open(t2, w, NY) == datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


def test_min_gap_keeps_emails_apart() -> None:
    r = rules(limits=(limit("breathing-room", min_gap=20 * H),))
    plan = plan_customer(
        context(msg("a", "sales", "offer", H), msg("b", "product", "tip", 2 * H)), r, NOW
    )
    times = sorted(e.send_at for e in plan.emails)
    assert times[1] - times[0] == 20 * H


def test_merge_two_roles_within_a_day_into_one_email() -> None:
    r = rules(merge=(merge("onboarding-digest", categories("onboarding", "product-tour"), 48 * H),))
    plan = plan_customer(
        context(
            msg("cs-1", "success", "onboarding", H), msg("pr-1", "product", "product-tour", 20 * H)
        ),
        r,
        NOW,
    )
    assert len(plan.emails) == 1
    email = plan.emails[0]
    assert set(email.members) == {"cs-1", "pr-1"}
    assert email.send_at == NOW + 20 * H  # not before the product tour's own send_after
    d = decisions(plan)
    assert d["cs-1"].status is Status.MERGED and d["cs-1"].email_id == email.id
    assert "pr-1" in d["cs-1"].reason and d["cs-1"].rule == "onboarding-digest"


def test_merge_never_delays_a_member_by_more_than_the_window() -> None:
    r = rules(merge=(merge("digest", categories("tip"), 24 * H),))
    plan = plan_customer(
        context(msg("t1", "product", "tip", H), msg("t2", "product", "tip", 30 * H)), r, NOW
    )
    assert len(plan.emails) == 2


def test_merged_email_counts_once() -> None:
    r = rules(
        limits=(limit("two", max=2, per=7 * D),),
        merge=(merge("digest", categories("tip"), 24 * H),),
    )
    plan = plan_customer(
        context(
            msg("t1", "product", "tip", H),
            msg("t2", "marketing", "tip", 2 * H),
            msg("o1", "sales", "offer", 3 * H),
        ),
        r,
        NOW,
    )
    assert all(d.status in (Status.MERGED, Status.SCHEDULED) for d in plan.decisions)
    assert len(plan.emails) == 2


def test_same_topic_suppresses_the_later_message_naming_the_earlier() -> None:
    r = rules(suppress=(suppress("same-topic-twice", same="topic", within=14 * D),))
    hist = (recorded("crm-9", "success", NOW - 5 * D, human=True, topic="feature:reports"),)
    plan = plan_customer(
        context(
            msg("mkt-301", "marketing", "announcement", H, topic="feature:reports"), history=hist
        ),
        r,
        NOW,
    )
    d = decisions(plan)["mkt-301"]
    assert d.status is Status.SUPPRESSED and d.rule == "same-topic-twice"
    assert "crm-9" in d.reason


def test_unsubscribed_customer_gets_no_marketing_but_still_a_receipt() -> None:
    reach = Reachability(unsubscribed_categories=frozenset({"announcement"}))
    plan = plan_customer(
        context(
            msg("mkt-1", "marketing", "announcement", H),
            msg("bill-1", "billing", "receipt", H, transactional=True),
            customer_=customer(reach=reach),
        ),
        rules(),
        NOW,
    )
    d = decisions(plan)
    assert d["mkt-1"].status is Status.SUPPRESSED and d["mkt-1"].rule == "unsubscribed"
    assert d["bill-1"].status is Status.SCHEDULED


def test_hard_bounce_stops_even_transactional() -> None:
    plan = plan_customer(
        context(
            msg("bill-1", "billing", "receipt", H, transactional=True),
            customer_=customer(reach=Reachability(hard_bounced=True)),
        ),
        rules(),
        NOW,
    )
    assert decisions(plan)["bill-1"].status is Status.SUPPRESSED
    assert plan.emails == ()


def test_over_drop_and_expiry() -> None:
    r = rules(
        limits=(limit("ann", max=1, per=7 * D, over=Over.DROP, filter=categories("announcement")),)
    )
    plan = plan_customer(
        context(
            msg("a1", "marketing", "announcement", H), msg("a2", "marketing", "announcement", 2 * H)
        ),
        r,
        NOW,
    )
    d = decisions(plan)
    assert d["a2"].status is Status.SUPPRESSED and d["a2"].rule == "ann"
    r2 = rules(limits=(limit("one-a-day", max=1, per=D),))
    plan2 = plan_customer(
        context(
            msg("b1", "sales", "offer", H),
            msg("b2", "marketing", "tip", 2 * H, expires_at=NOW + 5 * H),
        ),
        r2,
        NOW,
    )
    d2 = decisions(plan2)
    assert d2["b2"].status is Status.EXPIRED and d2["b2"].rule == "one-a-day"


def test_expression_error_holds_the_message_and_the_plan_goes_on() -> None:
    from cadence.rules.model import Expression, Location

    def boom(scope):  # type: ignore[no-untyped-def]
        return scope["customer"].open_tickets > 0

    bad = Expression("customer.open_tickets > 0", Location("r.yaml", 3, 11), boom)
    r = rules(suppress=(suppress("no-tips", filter=categories("tip"), when=bad),))
    plan = plan_customer(
        context(msg("t1", "product", "tip", H), msg("o1", "sales", "offer", H)), r, NOW
    )
    d = decisions(plan)
    assert d["t1"].status is Status.HELD and "open_tickets" in d["t1"].reason
    assert d["o1"].status is Status.SCHEDULED


def test_a_when_on_the_customer_alone_runs_once_per_customer_and_failures_hold_each() -> None:
    from cadence.rules.model import Expression, Location

    calls: list[int] = []

    def tickets(scope):  # type: ignore[no-untyped-def]
        calls.append(1)
        return scope["customer"].open_tickets > 0

    names = frozenset({"customer"})
    when = Expression("customer.open_tickets > 0", Location("r.yaml", 3, 11), tickets, names)
    r = rules(suppress=(suppress("no-tips", filter=categories("tip"), when=when),))
    pending = (msg("t1", "product", "tip", H), msg("t2", "product", "tip", H + D))
    plan = plan_customer(context(*pending, customer_=customer(open_tickets=2)), r, NOW)
    assert {d.status for d in plan.decisions} == {Status.SUPPRESSED}
    assert len(calls) == 1
    plan = plan_customer(context(*pending), r, NOW)  # no open_tickets: fails, not kept
    assert {d.status for d in plan.decisions} == {Status.HELD}
    assert len(calls) == 3


def test_account_scope_counts_other_customers() -> None:
    r = rules(limits=(limit("acct", max=1, per=7 * D, scope=Scope.ACCOUNT),))
    other = recorded("other-1", "marketing", NOW - D)
    other = type(other)(id="other-1", at=NOW - D, customer_id="c-99", members=other.members)
    plan = plan_customer(
        context(msg("m1", "marketing", "announcement", H), account_history=(other,)), r, NOW
    )
    d = decisions(plan)["m1"]
    assert d.status is Status.DEFERRED and d.send_at == NOW + 6 * D


def test_calendar_week_limit_two_on_sunday_two_on_monday() -> None:
    r = rules(limits=(limit("two-a-week", max=2, per=7 * D, calendar=CalendarUnit.WEEK),))
    sunday = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)  # Sunday 10:00 in New York
    start = sunday - NOW
    pending = [msg(f"m{i}", "sales", "offer", start + i * H) for i in range(4)]
    plan = plan_customer(context(*pending), r, NOW)
    local_days = sorted(e.send_at.astimezone(NY).strftime("%a") for e in plan.emails)
    assert local_days == ["Mon", "Mon", "Sun", "Sun"]


def test_daily_digest_at_nine_local() -> None:
    from datetime import time

    r = rules(merge=(merge("daily", categories("tip"), 24 * H, at=time(9, 0)),))
    plan = plan_customer(
        context(msg("t1", "product", "tip", 3 * H), msg("t2", "marketing", "tip", 5 * H)), r, NOW
    )
    assert len(plan.emails) == 1  # both ready after Monday's 09:00: Tuesday's digest
    assert plan.emails[0].send_at.astimezone(NY).strftime("%H:%M") == "09:00"


def test_same_inputs_same_plan() -> None:
    r = rules(
        limits=(limit("w", max=2, per=7 * D),), send_windows=(window(WEEKDAYS, "09:00", "17:00"),)
    )
    ctx = context(*(msg(f"m{i}", ["sales", "marketing"][i % 2], "offer", i * H) for i in range(6)))
    assert plan_customer(ctx, r, NOW) == plan_customer(ctx, r, NOW)


def test_owner_alert_is_internal_and_never_capped() -> None:
    r = rules(limits=(limit("none", max=0, per=7 * D),))
    alert = msg("pb-1", "success", "alert", H, to="owner")
    plan = plan_customer(context(alert), r, NOW)
    assert plan.emails[0].to_owner and decisions(plan)["pb-1"].status is Status.SCHEDULED
    assert roles("success").matches(alert)


def test_starter_rules_treat_a_missing_attribute_as_its_default() -> None:
    from pathlib import Path

    from cadence.rules import load_rules

    starter = load_rules(Path(__file__).resolve().parents[2] / "rules")
    plain = customer()  # no open_tickets, no signup_at, no plan
    plan = plan_customer(context(msg("t1", "product", "tip", H), customer_=plain), starter, NOW)
    d = decisions(plan)["t1"]
    assert d.status is not Status.HELD, d.reason


def test_rule_index_without_a_table_matches_as_the_filters_do() -> None:
    from cadence.rules import index

    many = frozenset(f"cat-{i}" for i in range(index._MAX_CLASSES))  # too many to list
    r = rules(
        limits=(limit("many", filter=categories(*many), max=1, per=D), limit("all", max=3, per=D)),
        suppress=(suppress("tips", filter=categories("tip")),),
    )
    assert r.index._table is None
    for m in (msg("a", "product", "cat-7", H), msg("b", "product", "tip", H)):
        got = r.index.applicable(m)
        assert got.limits == tuple(x for x in r.limits if x.filter.matches(m))
        assert got.suppress == tuple(x for x in r.suppress if x.filter.matches(m))
