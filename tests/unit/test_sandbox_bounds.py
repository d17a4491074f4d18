"""The one sandbox bounds what one operation may make (MAX_SIZE characters, items or digits),
in rule expressions (Jinja's and the fast path's closures alike) and in templates; a refused
operation says what it would have made and the limit, and a `when` that fails so holds its
message with that reason, never an empty one.

Every refused case would ask for a gigabyte or more if it ran: a bound that does not hold
shows as a MemoryError (or a very slow test), not as a TooLarge."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError
from jinja2.sandbox import MAX_RANGE

from cadence.delivery.render import Renderer, RenderError
from cadence.engine import plan_customer
from cadence.jinja import MAX_SIZE, TooLarge, sandbox
from cadence.model import Customer, Message, Sender, Status
from cadence.rules.expressions import compile_expression
from cadence.rules.loader import load_rules
from cadence.rules.model import Expression, Location

from .engine_helpers import NOW, context, msg

HERE = Location("rules.yaml", 4, 11)


def run(source: str, *, fast: bool) -> object:
    expression = compile_expression(source, HERE, fast=fast)
    return expression.run({})


REFUSED = [
    ("('a' * 10**10) | length", "'a' * 10000000000 would make a string of 10000000000 characters"),
    ("10**10 * 'ab'", "would make a string of 20000000000 characters"),
    ("[1, 2] * 10**9", "would make a list of 2000000000 items"),
    ("(1, 2) * 10**9", "would make a tuple of 2000000000 items"),
    ("2 ** 4000000", "2 ** 4000000 would make a number of 1204120 digits"),
    ("10 ** (10 ** 10)", "would make a number of 10000000001 digits"),
    ("'%999999999d' % 1", "would pad a field to 999999999 characters"),
    ("'%*d' % (10**9, 1)", "would pad a field to 1000000000 characters"),
    ("'x'.ljust(10**9)", "'x'.ljust(1000000000) would make a string of 1000000000 characters"),
    ("'x'.rjust(10**9)", "would make a string of 1000000000 characters"),
    ("'x'.center(10**9)", "would make a string of 1000000000 characters"),
    ("'7'.zfill(10**9)", "would make a string of 1000000000 characters"),
    ("'a\tb'.expandtabs(10**9)", "would make a string of 1000000003 characters"),
    ("('a' * 10**6).replace('a', 'a' * 1000)", "would make a string of 1000000000 characters"),
    ("('x' * 10**5).join(['a'] * 10**5)", "would make a string of 10000000000 characters"),
    ("'{:>999999999}'.format(1)", "would pad a field to 999999999 characters"),
    ("'{:>{}}'.format(1, 10**9)", "would pad a field to 1000000000 characters"),
    ("'{a:{w}}'.format_map({'a': 1, 'w': 10**9})", "would pad a field to 1000000000 characters"),
    ("'x' | center(10**9)", "center(1000000000) would make a string of 1000000000 characters"),
    ("'a' | indent(10**9)", "would make a string of 1000000001 characters"),
    ("'%999999999s' | format('x')", "would pad a field to 999999999 characters"),
    ("range(10**5) | join('x' * 10**5)", "would make a string of 9999900000 characters"),
    ("('a' * 10**6) | replace('a', 'aaaa')", "would make a string of 4000000 characters"),
    ("'a b' | wordwrap(1, wrapstring='x' * 10**6)", "would make a string of"),
    ("[1] | batch(10**9, 0) | list", "batch(1000000000, 0) would make a list of 1000000000 items"),
    ("[1] | slice(10**9) | list", "slice(1000000000) would make a list of 1000000000 items"),
    ("(('a' * 10**6) + 'b') | length", "would make a string of 1000001 characters"),
]


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "jinja"])
@pytest.mark.parametrize(("source", "says"), REFUSED, ids=[s for s, _ in REFUSED])
def test_an_operation_beyond_the_bound_is_refused_saying_the_limit(
    source: str, says: str, fast: bool
) -> None:
    with pytest.raises(TooLarge) as refused:
        run(source, fast=fast)
    assert isinstance(refused.value, SecurityError)
    assert says in str(refused.value)
    assert str(refused.value).endswith(f"; the limit is {MAX_SIZE}")


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("('a' * 10**6) | length", MAX_SIZE),  # the bound itself is allowed
        ("[0] * 3 + [1]", [0, 0, 0, 1]),
        ("-2 * 'ab'", ""),
        ("10 ** 10", 10**10),
        ("2 ** -2", 0.25),
        ("7 % 3", 1),
        ("'%5.2f|%-4s|%%' % (3.14159, 'ab')", " 3.14|ab  |%"),
        ("'{:>6}|{:.1f}'.format('ab', 2.25)", "    ab|2.2"),
        ("'ab'.center(6, '*')", "**ab**"),
        ("', '.join(['a', 'b'])", "a, b"),
        ("'a-b'.replace('-', '--')", "a--b"),
        ("'ab' | center(6)", "  ab  "),
        ("[1, 2, 3] | batch(2, 0) | list", [[1, 2], [3, 0]]),
        ("range(3) | join('-')", "0-1-2"),
    ],
)
def test_ordinary_operations_mean_what_they_always_did(source: str, value: object) -> None:
    assert run(source, fast=True) == value
    assert run(source, fast=False) == value


def test_jinjas_own_range_bound_stays() -> None:
    assert MAX_RANGE == 100_000 < MAX_SIZE
    assert len(run("range(100000) | list", fast=False)) == MAX_RANGE  # type: ignore[arg-type]
    with pytest.raises(OverflowError, match="MAX_RANGE"):
        run("range(100001)", fast=False)


def test_templates_are_bounded_too_and_lipsum_with_them() -> None:
    env = sandbox(html=True)
    with pytest.raises(TooLarge, match="would make a string of 1000000000 characters"):
        env.from_string("{{ 'ab' * 500000000 }}").render()
    with pytest.raises(TooLarge, match=r"lipsum\(1000000, max=100\)"):
        env.from_string("{{ lipsum(1000000) }}").render()
    with pytest.raises(TooLarge, match="would pad a field to 1000000000 characters"):
        env.from_string("{{ '{:^1000000000}'.format(name) }}").render(name="Ana")
    assert env.from_string("{{ '<b>' * 2 }}|{{ '{:>4}'.format(n) }}").render(n=7) == (
        "&lt;b&gt;&lt;b&gt;|   7"
    )


def test_a_constant_expression_is_not_folded_at_load() -> None:
    # Jinja folds constants when it compiles; a bounded operator is left for evaluation, so
    # loading the rule neither makes the string nor fails
    expression = compile_expression("('a' * 10**10) | length > 0", HERE, fast=False)
    with pytest.raises(TooLarge):
        expression.run({})


def test_a_when_beyond_the_bound_holds_its_message_naming_the_limit(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(
        "suppress:\n"
        "  - name: greedy\n"
        "    categories: [tip]\n"
        "    when: \"('a' * 10**10) | length > 0\"\n"
    )
    rules = load_rules(tmp_path)
    plan = plan_customer(
        context(
            msg("t1", "product", "tip", timedelta(hours=1)),
            msg("o1", "sales", "offer", timedelta(hours=1)),
        ),
        rules,
        NOW,
    )
    decided = {d.message_id: d for d in plan.decisions}
    assert decided["t1"].status is Status.HELD and decided["t1"].rule == "greedy"
    reason = decided["t1"].reason
    assert "held: rule greedy failed" in reason
    assert "would make a string of 10000000000 characters; the limit is 1000000" in reason
    assert decided["o1"].status is Status.SCHEDULED  # the rule is about tips only


class _Silent(Exception):
    """An error whose message is empty, as a MemoryError usually is."""


def test_an_expression_failing_with_an_empty_message_still_gives_a_reason() -> None:
    def fails(scope: object) -> object:
        raise _Silent()

    expression = Expression("customer.x > 0", HERE, fails)
    with pytest.raises(Exception, match=r"\(rules.yaml:4:11\): _Silent$"):
        expression.evaluate({})


def test_a_template_beyond_the_bound_fails_to_render_naming_the_limit(tmp_path: Path) -> None:
    (tmp_path / "t.subject.j2").write_text("Hello")
    (tmp_path / "t.text.j2").write_text("Hi {{ customer.name }},\n{{ '-' * 10**10 }}\n")
    renderer = Renderer(tmp_path, sender=Sender("success@vendor.test", "Vendor"))
    message = Message("m-1", "c-17", "marketing", template="t")
    with pytest.raises(RenderError) as failed:
        renderer.render_message(message, Customer("c-17", "ana@acme.test", "Ana"))
    assert (failed.value.file, failed.value.line) == ("t.text.j2", 2)
    assert failed.value.reason == (
        "'-' * 10000000000 would make a string of 10000000000 characters; the limit is 1000000"
    )


def _function() -> None:
    pass


def test_attribute_safety_kept_per_type_is_jinjas_answer_in_any_order() -> None:
    """The sandbox keeps each answer per type and attribute name: asked in either order, over
    safe and unsafe names alike, every answer is what Jinja's own immutable sandbox gives."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    jinja = ImmutableSandboxedEnvironment()
    objects: list[object] = [[1], {"a": 1}, {1}, "text", str, _function, Customer("c", "c@x", "C")]
    names = ["append", "keys", "clear", "add", "upper", "mro", "__class__", "_private",
             "__globals__", "__code__", "email", "items", "pop"]  # fmt: skip
    asked = [(o, n) for o in objects for n in names]
    for order in (asked, asked[::-1]):
        ours = sandbox()
        for obj, name in order:
            value = getattr(obj, name, None)
            expected = jinja.is_safe_attribute(obj, name, value)
            assert ours.is_safe_attribute(obj, name, value) == expected, (obj, name)
            assert ours.is_safe_attribute(obj, name, value) == expected, (obj, name)
    assert not sandbox().is_safe_attribute([1], "append", [].append)
    assert sandbox().is_safe_attribute([1], "index", [].index)
