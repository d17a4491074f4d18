"""`when` expressions: Jinja2 expressions in the one sandbox, compiled once when rules load.

At load, a syntax error or a name the language does not have is a rule error with its place
in the file; at evaluation, an undefined attribute raises (StrictUndefined) instead of quietly
making the rule do nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import TemplateSyntaxError, Undefined, UndefinedError, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from cadence.jinja import sandbox
from cadence.rules.errors import suggest
from cadence.rules.fastpath import Undefined as FastUndefined
from cadence.rules.fastpath import compile_fast
from cadence.rules.model import Expression, Location

NAMES = frozenset(
    {"customer", "message", "event", "now", "sent_within", "days_since", "days_since_contact"}
)

_env: ImmutableSandboxedEnvironment | None = None


def environment() -> ImmutableSandboxedEnvironment:
    global _env
    if _env is None:
        _env = sandbox()
    return _env


class ExpressionSyntaxError(ValueError):
    pass


def compile_expression(source: str, location: Location) -> Expression:
    """Compile `source`; raises ExpressionSyntaxError with a message a CSM can act on."""
    env = environment()
    text = source.strip()
    if not text:
        raise ExpressionSyntaxError("the expression is empty")
    try:
        tree = env.parse("{{ (" + text + ") }}")
        compiled = env.compile_expression(text, undefined_to_none=False)
    except TemplateSyntaxError as exc:
        raise ExpressionSyntaxError(f"bad expression `{text}`: {exc.message}") from None
    unknown = sorted(meta.find_undeclared_variables(tree) - NAMES)
    if unknown:
        name = unknown[0]
        raise ExpressionSyntaxError(
            f"unknown name `{name}` in `{text}`; the names are "
            f"{', '.join(sorted(NAMES))}{suggest(name, NAMES)}"
        )

    def run(scope: Mapping[str, Any]) -> Any:
        value = compiled(**scope)
        if isinstance(value, Undefined):
            bool(value)  # StrictUndefined raises, naming what was undefined
        return value

    body = tree.body[0]
    fast = (
        compile_fast(body.nodes[0])
        if isinstance(body, nodes.Output) and len(body.nodes) == 1
        else None
    )
    if fast is None:
        return Expression(source=text, location=location, run=run)

    def run_fast(scope: Mapping[str, Any]) -> Any:
        try:
            return fast(scope)
        except FastUndefined as exc:
            raise UndefinedError(str(exc)) from None

    return Expression(source=text, location=location, run=run_fast)
