"""`when` expressions: checked when the rules load, strict when they run.

A CSM's typo must show up at `cadence rules check`, not as a rule that silently never fires; and
an attribute a customer does not have must raise (the planner holds the message with the
error), never read as false.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from cadence.rules.expressions import (
    NAMES,
    ExpressionSyntaxError,
    compile_expression,
    customer_names,
)
from cadence.rules.model import ExpressionError, Location

LOC = Location("rules/fatigue.yaml", 12, 11)
NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


class Obj:
    """A value with attributes, like the views the planner hands in."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


def scope(**customer: Any) -> Mapping[str, Any]:
    calls: list[tuple[str, dict[str, Any]]] = []

    def sent_within(duration: str, **filters: Any) -> int:
        calls.append((duration, filters))
        return 1 if filters.get("human") else 0

    return {
        "customer": Obj(id="c-1", **customer),
        "message": Obj(role="marketing", category="tip", topic=None, data={}, human=False),
        "event": None,
        "now": NOW,
        "sent_within": sent_within,
        "days_since": lambda when: (NOW - datetime.fromisoformat(str(when))).days,
        "days_since_contact": lambda role=None, human=None: 31.0 if human else 2.0,
        "calls": calls,
    }


def test_the_names_are_the_ones_the_planner_passes() -> None:
    assert (
        frozenset(
            {
                "customer",
                "message",
                "event",
                "now",
                "sent_within",
                "days_since",
                "days_since_contact",
            }
        )
        == NAMES
    )


@pytest.mark.parametrize(
    ("source", "customer", "expected"),
    [
        ('customer.plan | default("free") != "free"', {"plan": "pro"}, True),
        ('customer.plan | default("free") != "free"', {}, False),
        ("customer.open_tickets | default(0) > 0", {"open_tickets": 2}, True),
        ("customer.open_tickets | default(0) > 0", {}, False),
        (
            "customer.signup_at is defined and days_since(customer.signup_at) < 14",
            {"signup_at": "2026-10-30T00:00:00+00:00"},
            True,
        ),
        ("customer.signup_at is defined and days_since(customer.signup_at) < 14", {}, False),
        ('sent_within("3d", human=True) > 0', {}, True),
        ('sent_within("3d", role="sales") > 0', {}, False),
        ("days_since_contact(human=True) >= 30", {}, True),
        ("message.category in ['tip', 'offer'] and not message.human", {}, True),
        ("now.weekday() == 0", {}, True),
    ],
)
def test_starter_shapes_evaluate_over_a_scope(
    source: str, customer: dict[str, Any], expected: bool
) -> None:
    expression = compile_expression(source, LOC)
    assert expression.source == source and expression.location == LOC
    assert expression.evaluate(scope(**customer)) is expected


def test_run_calls_the_compiled_expression_with_the_scope() -> None:
    values = scope()
    compile_expression('sent_within("14d", topic="x")', LOC).run(values)
    assert values["calls"] == [("14d", {"topic": "x"})]


@pytest.mark.parametrize(
    "source",
    [
        "customer.open_tickets > 0",  # the attribute is not there
        "customer.open_tickets",
        "customer.plan.tier == 'x'",
        "message.data.missing == 1",
    ],
)
def test_an_undefined_attribute_raises_naming_it(source: str) -> None:
    expression = compile_expression(source, LOC)
    with pytest.raises(ExpressionError) as info:
        expression.evaluate(scope(plan="pro"))
    text = str(info.value)
    assert source in text and str(LOC) in text
    assert any(name in text for name in ("open_tickets", "tier", "missing"))


def test_the_sandbox_holds() -> None:
    expression = compile_expression("customer.__class__.__mro__", LOC)
    with pytest.raises(ExpressionError):
        expression.evaluate(scope())


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "customer.plan ==",
            "bad expression `customer.plan ==`: unexpected 'end of the expression'",
        ),
        (
            "customer.plan == 'x' and (customer.y",
            "bad expression `customer.plan == 'x' and (customer.y`: "
            "unexpected end of the expression, expected ')'.",
        ),
        ("customer.plan = 'x'", "bad expression `customer.plan = 'x'`: chunk after expression"),
        ("x )( y", "bad expression `x )( y`: unexpected ')'"),
        ("   ", "the expression is empty"),
    ],
)
def test_syntax_errors_carry_jinjas_message(source: str, message: str) -> None:
    with pytest.raises(ExpressionSyntaxError) as info:
        compile_expression(source, LOC)
    assert str(info.value) == message


def test_template_braces_get_a_hint() -> None:
    with pytest.raises(ExpressionSyntaxError, match="without \\{\\{ \\}\\}"):
        compile_expression("{{ customer.plan }} == 'pro'", LOC)


def test_a_syntax_error_on_a_later_line_says_which() -> None:
    with pytest.raises(ExpressionSyntaxError, match="line 3 of the expression"):
        compile_expression("customer.plan\n  ==\n )", LOC)


def test_unknown_name_suggests_the_nearest() -> None:
    with pytest.raises(ExpressionSyntaxError) as info:
        compile_expression('custmer.plan == "pro"', LOC)
    assert str(info.value) == (
        'unknown name `custmer` in `custmer.plan == "pro"`; the names are customer, '
        "days_since, days_since_contact, event, message, now, sent_within; "
        "did you mean `customer`?"
    )


def test_every_unknown_name_is_named() -> None:
    with pytest.raises(ExpressionSyntaxError) as info:
        compile_expression("sent_witin('3d') > 0 and plan == 'x' and mesage.topic", LOC)
    text = str(info.value)
    assert text.startswith("unknown names `mesage`, `plan`, `sent_witin` in ")
    assert "did you mean `message` for `mesage`?" in text
    assert "did you mean `sent_within` for `sent_witin`?" in text


def test_filters_and_tests_of_the_template_language_work() -> None:
    expression = compile_expression(
        "[1, 2, 3] | select('odd') | list | length == 2 and message.topic is none", LOC
    )
    assert expression.evaluate(scope()) is True


@pytest.mark.parametrize(
    ("source", "names"),
    [
        ('customer.helth == "red"', ["helth"]),
        (
            'customer["plan"] != "free" and days_since(customer.signup_at) < 14',
            ["plan", "signup_at"],
        ),
        ("customer.open_tickets | default(0) > 0 and customer.open_tickets < 9", ["open_tickets"]),
        ("customer.address.city == 'Berlin'", ["address"]),
        ("message.data.customer == 1 and event.customer", []),
        ("customer[message.category]", []),
    ],
)
def test_customer_names_are_what_an_expression_reads_of_the_customer(
    source: str, names: list[str]
) -> None:
    assert customer_names(source) == names


def test_customer_fields_are_what_the_customer_view_adds_to_the_attributes() -> None:
    from cadence.model import Customer
    from cadence.views import CUSTOMER_FIELDS, customer_view

    assert set(customer_view(Customer("c-1", "a@b.test", "A", "UTC", None, {}))) == CUSTOMER_FIELDS
    # derived from the view, so held to the names a rule may read of any customer, and to
    # nothing of one customer's attributes
    assert {
        "id",
        "email",
        "name",
        "timezone",
        "account",
        "opens",
        "clicks",
        "replies",
        "last_open_at",
        "last_click_at",
        "last_reply_at",
    } == CUSTOMER_FIELDS
    pro = customer_view(Customer("c-1", "a@b.test", "A", "UTC", None, {"plan": "pro"}))
    assert set(pro) == CUSTOMER_FIELDS | {"plan"}
