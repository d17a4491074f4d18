"""The rule language: files in, frozen rules out, every error at FILE:LINE:COL."""

from __future__ import annotations

import json
from datetime import time, timedelta
from pathlib import Path

import pytest

from cadence.rules import RuleErrors, load_rules
from cadence.rules.compile import parse_days, parse_hours
from cadence.rules.expressions import compile_expression
from cadence.rules.model import CalendarUnit, ExpressionError, Location, Over, Scope
from cadence.rules.schema import json_schema

REPO = Path(__file__).resolve().parents[2]
LOC = Location("t.yaml", 1, 1)


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder


def errors_of(folder: Path) -> list[str]:
    with pytest.raises(RuleErrors) as info:
        load_rules(folder)
    return [str(e) for e in info.value.errors]


def test_starter_rules_load() -> None:
    rules = load_rules(REPO / "rules")
    names = {lim.name: lim for lim in rules.limits}
    assert names["weekly-total"].max == 3 and names["weekly-total"].per == timedelta(days=7)
    assert names["breathing-room"].min_gap == timedelta(hours=20)
    acct = names["account-announcements"]
    assert acct.scope == Scope.ACCOUNT and acct.over == Over.DEFER  # waits, not dropped
    assert rules.send_windows[0].filter.roles == {"support"}
    assert rules.send_windows[1].days == frozenset(range(5))
    assert {p.name for p in rules.playbooks} >= {
        "after-onboarding",
        "quiet-customer",
        "tell-the-owner",
    }
    assert len(rules.version) == 12


def test_every_error_with_its_place(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        (
            "limits:\n"
            "  - name: weekly-total\n"
            "    maxx: 3\n"
            "    per: 7d\n"
            "  - name: gap\n"
            "    min_gap: 20x\n"
            "send_windows:\n"
            "  - days: mon-fry\n"
            '    hours: "09:00-17:00"\n'
            "suppress:\n"
            "  - name: s1\n"
            '    when: custmer.plan == "x"\n'
        ),
    )
    write(tmp_path, "b.yaml", "merge:\n  - name: gap\n    window: 1d\n")
    errors = errors_of(tmp_path)
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    assert f"{a}:3:5: unknown key `maxx` in limit `weekly-total`" in errors[0]
    assert "did you mean `max`?" in errors[0]
    assert any(e.startswith(f"{a}:6:14: '20x' is not a duration") for e in errors)
    assert any(e.startswith(f"{a}:8:11: `mon-fry`") for e in errors)
    assert any(
        e.startswith(f"{a}:12:11: unknown name `custmer`") and "did you mean `customer`" in e
        for e in errors
    )
    assert any(
        e.startswith(f"{b}:2:11: the name `gap` is already used at {a}:5:11") for e in errors
    )


def test_yaml_syntax_and_semantic_errors(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "limits:\n  - name: x\n    max: [1\n")
    assert errors_of(tmp_path)[0].startswith(f"{tmp_path / 'a.yaml'}:")
    other = write(tmp_path / "o", "s.yaml", "suppress:\n  - name: s\n    same: topic\n")
    assert "`same` needs `within`" in errors_of(other)[0]
    cal = write(
        tmp_path / "c",
        "l.yaml",
        "limits:\n  - name: c\n    max: 2\n    per: 3d\n    window: calendar\n",
    )
    assert "with window: calendar" in errors_of(cal)[0]
    pb = write(tmp_path / "p", "p.yaml", "playbooks:\n  - name: p\n    send: {template: x}\n")
    assert "needs `on`" in errors_of(pb)[0]


def test_calendar_and_merge_at(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        "r.yaml",
        (
            "limits:\n  - name: two-a-week\n    max: 2\n    per: 7d\n    window: calendar\n"
            'merge:\n  - name: daily\n    categories: [tip]\n    at: "09:00"\n    days: mon-fri\n'
        ),
    )
    rules = load_rules(folder)
    assert rules.limits[0].calendar == CalendarUnit.WEEK
    assert rules.merge[0].at == time(9, 0) and rules.merge[0].days == frozenset(range(5))


def test_days_and_hours() -> None:
    assert parse_days("mon-fri") == frozenset(range(5))
    assert parse_days("sat,sun") == {5, 6}
    assert parse_days("fri-mon") == {4, 5, 6, 0}
    assert parse_hours("22:00-06:00") == (time(22), time(6))
    assert parse_hours("00:00-24:00") == (time(0), time(0))
    with pytest.raises(ValueError):
        parse_hours("25:00-26:00")


def test_expressions_run_and_fail_loudly() -> None:
    class Customer:
        plan = "pro"

    expr = compile_expression('customer.plan != "free"', LOC)
    assert expr.evaluate({"customer": Customer()}) is True
    missing = compile_expression("customer.open_tickets > 0", LOC)
    with pytest.raises(ExpressionError, match="open_tickets"):
        missing.evaluate({"customer": Customer()})
    with pytest.raises(ExpressionError):
        compile_expression("customer.missing", LOC).evaluate({"customer": Customer()})


def test_version_changes_with_the_files(tmp_path: Path) -> None:
    folder = write(tmp_path, "r.yaml", "max_delay: 7d\n")
    v1 = load_rules(folder).version
    write(tmp_path, "r.yaml", "max_delay: 8d\n")
    assert load_rules(folder).version != v1


def test_schema_file_is_current_and_rejects_a_misspelt_key() -> None:
    shipped = json.loads((REPO / "rules" / "rule-file.schema.json").read_text())
    assert shipped == json_schema()
    limit = shipped["$defs"]["LimitFile"]
    assert limit["additionalProperties"] is False and "max" in limit["properties"]


@pytest.mark.parametrize(
    "source",
    [
        'customer.plan | default("free") != "free"',
        "customer.open_tickets | default(0) > 0",
        "customer.signup_at is defined and days_since(customer.signup_at) < 14",
        'sent_within("3d", human=True) > 0',
        "not customer.vip or customer.seats * 2 >= 10",
        "message.category in ['tip', 'offer'] and message.data.x | length == 3",
        "customer.missing",
        "customer.missing > 1",
        "customer.missing is defined",
        "1 < customer.seats < 10",
        "customer.name | lower == 'ana'",
        "customer._secret",
    ],
)
def test_compiled_fast_path_means_what_jinja_means(source: str) -> None:
    from cadence.engine.scope import customer_view, message_view, to_time
    from cadence.rules.expressions import compile_expression, environment
    from cadence.rules.fastpath import compile_fast
    from cadence.rules.model import Location

    from .engine_helpers import NOW, customer, msg

    cust = customer(vip=False, seats=3, signup_at="2026-11-01T00:00:00Z")
    scope = {
        "customer": customer_view(cust),
        "message": message_view(msg("m1", "product", "tip", timedelta(0), data={"x": "abc"})),
        "now": NOW,
        "days_since": lambda t: (NOW - to_time(t)).days,
        "sent_within": lambda d, **kw: 0,
    }
    env = environment()
    tree = env.parse("{{ (" + source + ") }}")
    assert compile_fast(tree.body[0].nodes[0], env) is not None  # the closure serves it
    where = Location("r.yaml", 1, 1)

    def outcome(fast: bool) -> object:
        try:
            return compile_expression(source, where, fast=fast).run(scope)
        except Exception as exc:  # noqa: BLE001 - the kind of failure is what is compared
            return type(exc)

    assert outcome(True) == outcome(False), source
