"""`when` expressions: Jinja2 expressions in the one sandbox, compiled once when rules load.

At load, a syntax error or a name the language does not have is a rule error with its place
in the file; at evaluation, an undefined attribute raises (StrictUndefined) instead of quietly
making the rule do nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import TemplateSyntaxError, Undefined, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from cadence.jinja import sandbox
from cadence.rules.errors import suggest
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
    """An expression that cannot run at all: the loader turns it into a RuleError at the
    YAML value, so the CSM sees it when the rules load rather than when mail is due."""


def _did_you_mean(name: str, say_which: bool) -> str:
    hint = suggest(name, NAMES)
    return hint.replace("?", f" for `{name}`?") if hint and say_which else hint


def _tree(text: str) -> nodes.Template:
    """An expression as Jinja parses it: one output node holding it, whose names the
    compiler reads and `customer_names` walks."""
    return environment().parse("{{ (" + text + ") }}")


def compile_expression(source: str, location: Location, *, fast: bool = True) -> Expression:
    """Compile `source`; raises ExpressionSyntaxError with a message a CSM can act on. The
    common shapes run as closures (`fastpath`) with Jinja's meaning; without `fast`, every
    expression runs through Jinja (what the tests hold the closures to)."""
    env = environment()
    text = source.strip()
    if not text:
        raise ExpressionSyntaxError("the expression is empty")
    try:
        # Jinja's own compile first: its message is about what was written, not the wrapper
        compiled = env.compile_expression(text, undefined_to_none=False)
        tree = _tree(text)
    except TemplateSyntaxError as exc:
        message = (exc.message or "").replace("end of template", "end of the expression")
        where = f" (line {exc.lineno} of the expression)" if (exc.lineno or 1) > 1 else ""
        hint = "; write the expression without {{ }}" if "{{" in text or "{%" in text else ""
        raise ExpressionSyntaxError(f"bad expression `{text}`: {message}{where}{hint}") from None
    reads = frozenset(meta.find_undeclared_variables(tree))
    unknown = sorted(reads - NAMES)
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        names = ", ".join(f"`{name}`" for name in unknown)
        hints = [hint for name in unknown if (hint := _did_you_mean(name, len(unknown) > 1))]
        raise ExpressionSyntaxError(
            f"unknown name{plural} {names} in `{text}`; the names are "
            f"{', '.join(sorted(NAMES))}{''.join(hints)}"
        )

    def run(scope: Mapping[str, Any]) -> Any:
        value = compiled(**scope)
        if isinstance(value, Undefined):
            bool(value)  # StrictUndefined raises, naming what was undefined
        return value

    body = tree.body[0]
    closure = (
        compile_fast(body.nodes[0], env)
        if fast and isinstance(body, nodes.Output) and len(body.nodes) == 1
        else None
    )
    if closure is None:
        return Expression(source=text, location=location, run=run, names=reads)

    def run_fast(scope: Mapping[str, Any]) -> Any:
        value = closure(scope)
        if isinstance(value, Undefined):
            bool(value)  # as `run`: StrictUndefined raises, naming what was undefined
        return value

    return Expression(source=text, location=location, run=run_fast, names=reads)


def customer_names(source: str) -> list[str]:
    """The names `source` reads of the customer (`customer.plan`, `customer["plan"]`), in the
    order written, once each: what `rules check` holds against the ledger's attributes."""
    found: dict[str, None] = {}
    tree = _tree(source.strip())
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            target, name = node.node, node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            target, name = node.node, node.arg.value
        else:
            continue
        if isinstance(target, nodes.Name) and target.name == "customer" and isinstance(name, str):
            found[name] = None
    return list(found)
