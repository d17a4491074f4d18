"""Hold rules wait instead of dropping; limits with `when` apply to a segment of customers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from cadence.engine.planner import plan_customer
from cadence.model import Status
from cadence.rules import RuleErrors, load_rules
from cadence.rules.expressions import compile_expression
from cadence.rules.model import HoldRule
from tests.unit.engine_helpers import (
    LOC,
    NOW,
    WEEKDAYS,
    categories,
    context,
    customer,
    limit,
    msg,
    rules,
    suppress,
    window,
)

H = timedelta(hours=1)
D = timedelta(days=1)


def hold(name: str, condition: str, **kw: object) -> HoldRule:
    return HoldRule(name=name, location=LOC, while_=compile_expression(condition, LOC), **kw)  # type: ignore[arg-type]


TICKETS = hold("no-tips-while-ticket-open", "customer.open_tickets > 0", filter=categories("tip"))
HOURS = window(WEEKDAYS, "09:00", "17:00")  # New York, the helpers' customer


def decisions(plan):  # type: ignore[no-untyped-def]
    return {d.message_id: d for d in plan.decisions}


def test_a_tip_waits_while_a_ticket_is_open_and_is_asked_again_at_the_next_opening() -> None:
    r = rules(hold=(TICKETS,), send_windows=(HOURS,))
    tip = msg("prd-1", "product", "tip", H)
    plan = plan_customer(context(tip, customer_=customer(open_tickets=1)), r, NOW)
    d = decisions(plan)["prd-1"]
    assert d.status is Status.DEFERRED and d.rule == "no-tips-while-ticket-open"
    assert "`customer.open_tickets > 0`" in d.reason and d.send_at is None
    assert plan.emails == ()
    # NOW is Monday 07:00 in New York: asked again when the window opens at 09:00
    assert plan.next_plan_at == NOW + 2 * H
    # the ticket closed: the same tip goes, through every other rule
    plan = plan_customer(context(tip, customer_=customer(open_tickets=0)), r, NOW)
    assert decisions(plan)["prd-1"].status is Status.SCHEDULED
    # another category is not held
    other = msg("prd-2", "product", "announcement", H)
    plan = plan_customer(context(other, customer_=customer(open_tickets=1)), r, NOW)
    assert decisions(plan)["prd-2"].status is Status.SCHEDULED


def test_a_hold_that_outlasts_the_expiry_expires_naming_the_hold() -> None:
    r = rules(hold=(TICKETS,))
    tip = msg("prd-1", "product", "tip", H, expires_at=NOW + D)
    busy = customer(open_tickets=2)
    first = decisions(plan_customer(context(tip, customer_=busy), r, NOW))["prd-1"]
    later = plan_customer(context(tip, customer_=busy, previous={"prd-1": first}), r, NOW + 2 * D)
    d = decisions(later)["prd-1"]
    assert d.status is Status.EXPIRED and d.rule == "no-tips-while-ticket-open"
    assert "open_tickets" in d.reason


def test_a_failing_condition_holds_the_message_with_the_reason() -> None:
    r = rules(hold=(hold("broken", "customer.no_such_field > 0"),))
    d = decisions(plan_customer(context(msg("m-1", "sales", "offer", H)), r, NOW))["m-1"]
    assert d.status is Status.HELD and "no_such_field" in d.reason


def test_a_message_held_by_a_failing_rule_expires_naming_the_rule_and_the_failure() -> None:
    # a typo in a suppress rule's attribute holds what the rule covers; when the message's
    # time runs out, the expiry still says which rule kept it back and how it failed
    r = rules(suppress=(suppress("typo", when=compile_expression('customer.helth == "red"', LOC)),))
    news = msg("mkt-1", "marketing", "newsletter", H, expires_at=NOW + D)
    first = decisions(plan_customer(context(news), r, NOW))["mkt-1"]
    assert first.status is Status.HELD and first.rule == "typo" and "helth" in first.reason
    later = plan_customer(context(news, previous={"mkt-1": first}), r, NOW + 2 * D)
    d = decisions(later)["mkt-1"]
    assert d.status is Status.EXPIRED and d.final and d.rule == "typo"
    assert "passed before it could go (the last plan: held: rule typo failed" in d.reason
    assert "helth" in d.reason


def test_a_limit_with_when_caps_only_its_segment() -> None:
    quiet = limit(
        "quiet-weekly", max=1, per=7 * D, when=compile_expression("customer.opens_30d == 0", LOC)
    )
    r = rules(limits=(quiet,))
    two = (msg("m-1", "sales", "offer", H), msg("m-2", "product", "tip", 2 * H))
    plan = plan_customer(context(*two, customer_=customer(opens_30d=0)), r, NOW)
    assert [d.status for d in plan.decisions].count(Status.DEFERRED) == 1
    plan = plan_customer(context(*two, customer_=customer(opens_30d=4)), r, NOW)
    assert {d.status for d in plan.decisions} == {Status.SCHEDULED}
    broken = limit("b", max=1, per=D, when=compile_expression("customer.nope", LOC))
    d = decisions(plan_customer(context(two[0]), rules(limits=(broken,)), NOW))["m-1"]
    assert d.status is Status.HELD and "limit b failed" in d.reason


def test_hold_rules_load_from_yaml_and_a_bad_one_says_where(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "hold:\n  - name: no-tips-while-ticket-open\n    categories: [tip]\n"
        "    while: customer.open_tickets > 0\n"
        "limits:\n  - name: quiet\n    max: 1\n    per: 7d\n    when: customer.opens_30d == 0\n"
    )
    loaded = load_rules(tmp_path)
    assert [h.name for h in loaded.hold] == ["no-tips-while-ticket-open"]
    assert loaded.limits[0].when is not None
    (tmp_path / "r.yaml").write_text(
        "hold:\n  - name: h\n    while: customer.open_tickets >\n"
        "limits:\n  - name: l\n    max: 1\n    per: 7d\n    when: message.role == 'x'\n"
    )
    try:
        load_rules(tmp_path)
    except RuleErrors as exc:
        found = {(e.line, e.column): e.message for e in exc.errors}
    else:
        raise AssertionError("bad rules loaded")
    assert (3, 12) in found and "bad expression" in found[(3, 12)]
    assert (8, 11) in found and "cannot read `message`" in found[(8, 11)]


@settings(max_examples=80, deadline=None)
@given(
    tickets=st.integers(min_value=0, max_value=2),
    offsets=st.lists(st.integers(min_value=0, max_value=96), min_size=1, max_size=5),
    life=st.integers(min_value=1, max_value=10),
    later=st.integers(min_value=0, max_value=15),
)
def test_a_held_message_never_goes_while_its_condition_holds_nor_after_expiry(
    tickets: int, offsets: list[int], life: int, later: int
) -> None:
    r = rules(hold=(TICKETS,), send_windows=(HOURS,), limits=(limit("cap", max=2, per=D),))
    kinds = ["tip", "offer"]
    pending = [
        msg(f"m-{i}", "product", kinds[i % 2], h * H, expires_at=NOW + h * H + life * D)
        for i, h in enumerate(offsets)
    ]
    at = NOW + later * D
    plan = plan_customer(context(*pending, customer_=customer(open_tickets=tickets)), r, at)
    by_id = {m.id: m for m in pending}
    for email in plan.emails:
        for member in email.members:
            message = by_id[member]
            assert not (tickets > 0 and message.category == "tip"), "held tip was planned"
            assert message.expires_at is not None and email.send_at <= message.expires_at
    for d in plan.decisions:
        assert d.reason  # every message ends in a status with its reason
        if d.status is Status.DEFERRED and d.rule == TICKETS.name:
            assert tickets > 0 and d.send_at is None


def test_a_cap_for_customers_who_have_not_opened_anything_in_30_days() -> None:
    from dataclasses import replace

    from cadence.model import Engagement

    cold = "customer.last_open_at is none or days_since(customer.last_open_at) > 30"
    r = rules(limits=(limit("cold-weekly", max=1, per=7 * D, when=compile_expression(cold, LOC)),))
    two = (msg("m-1", "sales", "offer", H), msg("m-2", "product", "tip", 2 * H))
    never = customer()
    opened = replace(never, engagement=Engagement(last_open_at=NOW - 3 * D, opens=4))
    long_ago = replace(never, engagement=Engagement(last_open_at=NOW - 45 * D, opens=1))
    for who, deferred in ((never, 1), (opened, 0), (long_ago, 1)):
        plan = plan_customer(context(*two, customer_=who), r, NOW)
        assert [d.status for d in plan.decisions].count(Status.DEFERRED) == deferred, who
