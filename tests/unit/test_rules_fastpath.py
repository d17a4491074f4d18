"""The closures `fastpath` compiles for common `when` shapes mean what Jinja's sandbox means.

Hypothesis writes expressions from the language's grammar (names, attributes and items,
constants, lists and tuples, comparisons, arithmetic, and/or/not, the filters and tests the
closures handle, the helpers) and customers whose attributes may be missing, None, numbers,
strings or lists; each expression runs through the closures and through Jinja, over the same
scope, and the two must give the same value, or fail the same way.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import Undefined
from jinja2.exceptions import SecurityError, UndefinedError

from cadence.engine.scope import make_scope
from cadence.rules.expressions import ExpressionSyntaxError, compile_expression
from cadence.rules.model import Location

from .engine_helpers import NOW, customer, msg, recorded

LOC = Location("rules.yaml", 1, 1)

names = st.sampled_from(
    [
        "customer.plan",
        "customer.seats",
        "customer.tags",
        "customer.signup_at",
        "customer.missing",
        "customer['plan']",
        "customer['missing']",
        "customer.tags[0]",
        "customer.tags[5]",
        "customer.items",
        "customer._values",
        "message.role",
        "message.category",
        "message.topic",
        "message.human",
        "message.priority",
        "message.data.feature",
        "message.data['feature']",
        "message.data.missing",
        "now",
    ]
)
constants = st.sampled_from(
    ["0", "1", "3", "2.5", "-1", "'pro'", "'free'", '"Pro"', "none", "true", "false", "''"]
)
helpers = st.sampled_from(
    [
        "days_since(customer.signup_at)",
        "sent_within('3d')",
        "sent_within('7d', role='sales')",
        "sent_within('30d', human=true)",
        "days_since_contact()",
        "days_since_contact(human=true)",
        "days_since_contact(role='success')",
    ]
)
atoms = names | constants | helpers
COMPARE = ["==", "!=", "<", "<=", ">", ">=", "in", "not in"]
ARITH = ["+", "-", "*", "/", "//", "%"]
FILTERS = ["lower", "upper", "length", "int", "float", "abs", "round", "string"]
TESTS = ["defined", "undefined", "none"]


def _grow(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(inner, st.sampled_from(COMPARE), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(inner, st.sampled_from(ARITH), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        inner.map(lambda e: f"(not {e})"),
        inner.map(lambda e: f"(-{e})"),
        st.tuples(inner, st.sampled_from(FILTERS)).map(lambda t: f"({t[0]} | {t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]} | default({t[1]}))"),
        inner.map(lambda e: f"({e} | default)"),
        st.tuples(inner, st.sampled_from(TESTS)).map(lambda t: f"({t[0]} is {t[1]})"),
        st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: "(" + ", ".join(xs) + ")"),
    )


expressions = st.recursive(atoms, _grow, max_leaves=8)
values = st.one_of(
    st.none(),
    st.integers(-5, 50),
    st.floats(-10, 10, allow_nan=False),
    st.sampled_from(["pro", "free", "Pro", "", "2026-10-01T09:00:00Z"]),
    st.lists(st.sampled_from(["a", "b", "vip"]), max_size=3),
)
attributes = st.dictionaries(
    st.sampled_from(["plan", "seats", "tags", "signup_at", "items"]), values, max_size=5
)


def _outcome(run: Any, scope: dict[str, Any]) -> tuple[str, Any]:
    try:
        value = run(scope)
    except UndefinedError:
        return ("undefined", None)
    except SecurityError:
        return ("unsafe", None)
    except Exception as exc:  # noqa: BLE001 - the kind of failure is what is compared
        return ("error", type(exc).__name__)
    return ("value", _plain(value))


def _plain(value: Any) -> Any:
    """A value that compares: an undefined one (inside a list too) as a marker, NaN as one."""
    if isinstance(value, Undefined):
        return "<undefined>"
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, float) and value != value:
        return "<nan>"
    return value


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions, attributes, st.sampled_from([None, "reports"]))
def test_the_closures_mean_what_jinja_means(
    text: str, attrs: dict[str, Any], feature: str | None
) -> None:
    try:
        fast = compile_expression(text, LOC)
    except ExpressionSyntaxError:
        return  # not an expression of the language; the loader says so either way
    jinja = compile_expression(text, LOC, fast=False)
    data = {"feature": feature} if feature else {}
    message = msg("m1", "sales", "offer", timedelta(hours=2), topic="pricing", data=data)
    history = (recorded("r1", "sales", NOW - timedelta(days=2)),)
    last = {"any": NOW - timedelta(days=4), "role:success": NOW - timedelta(days=40)}
    scope = make_scope(customer(**attrs), history, last, NOW, message=message)
    assert _outcome(fast.run, scope) == _outcome(jinja.run, scope), text
