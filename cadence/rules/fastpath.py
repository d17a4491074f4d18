"""Compiling the common shapes of `when` expressions into plain closures.

Jinja2 builds a fresh render context on every call, which costs more than the rule itself; the
planner evaluates `when`s for every message of every customer. The expressions CSMs write are
small (names, attributes, constants, comparisons, and/or/not, filters, tests, our helper
functions), so those shapes are turned, once at load, into closures over Jinja's own runtime:
the sandbox's `getattr` and `getitem` (its safety checks included), its undefined values
(StrictUndefined: using one raises), its filter and test functions, Python's operators as
Jinja's compiled code uses them (those the sandbox bounds through `checked_binop`, as it
does). The same meaning by construction, which a property test holds against Jinja on
generated expressions. Anything else returns None and is left to Jinja.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any, cast

from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.tests import TESTS

from cadence.jinja import checked_binop

Scope = Mapping[str, Any]
Fn = Callable[[Scope], Any]

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "lteq": operator.le,
    "gt": operator.gt,
    "gteq": operator.ge,
    "in": lambda a, b: a in b,
    "notin": lambda a, b: a not in b,
}
_BINARY: dict[type[nodes.Node], Callable[[Any, Any], Any]] = {
    nodes.Add: operator.add,
    nodes.Sub: operator.sub,
    nodes.Mul: operator.mul,
    nodes.Div: operator.truediv,
    nodes.FloorDiv: operator.floordiv,
    nodes.Mod: operator.mod,
}
#: Jinja's own filters and tests, those that take no environment or context
_FILTERS: dict[str, Callable[..., Any]] = {
    name: fn
    for name in ("default", "d", "lower", "upper", "length", "int", "float", "abs", "round")
    if getattr(fn := FILTERS[name], "jinja_pass_arg", None) is None
}
_TESTS: dict[str, Callable[..., Any]] = {
    name: cast("Callable[..., Any]", fn)
    for name in ("defined", "undefined", "none")
    if getattr(fn := TESTS[name], "jinja_pass_arg", None) is None
}
_MISSING = object()


def _all(*parts: Fn | None) -> list[Fn] | None:
    """The parts, when every one compiled; else None (the whole is left to Jinja)."""
    if any(p is None for p in parts):
        return None
    return [p for p in parts if p is not None]


def _caller(env: ImmutableSandboxedEnvironment) -> Callable[..., Any]:
    """A call as the sandbox makes it from an expression (`SandboxedEnvironment.call`, then
    `Context.call` for a function that takes no context, as the helpers do)."""
    safe, undefined = env.is_safe_callable, env.undefined

    def call(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not safe(fn):
            raise SecurityError(f"{fn!r} is not safely callable")
        try:
            return fn(*args, **kwargs)
        except StopIteration:
            return undefined(
                "value was undefined because a callable raised a StopIteration exception"
            )

    return call


def compile_fast(node: nodes.Node, env: ImmutableSandboxedEnvironment) -> Fn | None:
    """A closure for `node`, evaluated as `env` (the sandbox) would, or None when it has a
    shape left to Jinja."""
    if isinstance(node, nodes.Const):
        value = node.value
        return lambda s: value
    if isinstance(node, nodes.Name):
        name, undefined = node.name, env.undefined

        def load(s: Scope) -> Any:
            v = s.get(name, _MISSING)
            return undefined(name=name) if v is _MISSING else v

        return load
    if isinstance(node, nodes.Getattr):
        got = _all(compile_fast(node.node, env))
        if got is None:
            return None
        inner, attr, getattr_ = got[0], node.attr, env.getattr
        return lambda s: getattr_(inner(s), attr)
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        got = _all(compile_fast(node.node, env))
        if got is None:
            return None
        inner, key, getitem = got[0], node.arg.value, env.getitem
        return lambda s: getitem(inner(s), key)
    if isinstance(node, nodes.List | nodes.Tuple):
        # constants only (`customer.plan in ["pro", "team"]`), the usual list of a rule
        if not all(isinstance(i, nodes.Const) for i in node.items):
            return None
        values = [i.value for i in node.items if isinstance(i, nodes.Const)]
        if isinstance(node, nodes.Tuple):
            fixed = tuple(values)
            return lambda s: fixed
        return lambda s: list(values)  # a list of its own each time, as Jinja makes
    if isinstance(node, nodes.Not | nodes.Neg):
        got = _all(compile_fast(node.node, env))
        if got is None:
            return None
        inner = got[0]
        if isinstance(node, nodes.Not):
            return lambda s: not inner(s)
        return lambda s: -inner(s)
    if isinstance(node, nodes.And | nodes.Or):
        pair = _all(compile_fast(node.left, env), compile_fast(node.right, env))
        if pair is None:
            return None
        left, right = pair
        if isinstance(node, nodes.And):
            return lambda s: left(s) and right(s)
        return lambda s: left(s) or right(s)
    if isinstance(node, nodes.BinExpr):
        op = _BINARY.get(type(node))
        pair = _all(compile_fast(node.left, env), compile_fast(node.right, env))
        if op is None or pair is None:
            return None
        fn, (lhs, rhs) = op, pair
        if node.operator in env.intercepted_binops:
            # as the sandbox runs it: `'a' * 10**9` is refused before it is made
            symbol = node.operator
            return lambda s: checked_binop(symbol, lhs(s), rhs(s))
        return lambda s: fn(lhs(s), rhs(s))
    if isinstance(node, nodes.Compare):
        exprs = _all(compile_fast(node.expr, env), *(compile_fast(o.expr, env) for o in node.ops))
        fns = [_COMPARE.get(o.op) for o in node.ops]
        if exprs is None or any(f is None for f in fns):
            return None
        chain = list(zip([f for f in fns if f is not None], exprs[1:], strict=True))
        first = exprs[0]

        def compare(s: Scope) -> Any:
            left = first(s)
            result: Any = True
            for fn, expr in chain:
                right = expr(s)
                result = fn(left, right)
                if not result:
                    return result
                left = right
            return result

        return compare
    if isinstance(node, nodes.Test):
        test = _TESTS.get(node.name)
        if test is None or node.args or node.kwargs or node.dyn_args or node.dyn_kwargs:
            return None
        got = _all(compile_fast(node.node, env))
        if got is None:
            return None
        inner, check = got[0], test
        return lambda s: check(inner(s))
    if isinstance(node, nodes.Filter):
        filter_fn = _FILTERS.get(node.name)
        if filter_fn is None or node.node is None or node.kwargs:
            return None
        if node.dyn_args or node.dyn_kwargs:
            return None
        parts = _all(compile_fast(node.node, env), *(compile_fast(a, env) for a in node.args))
        if parts is None:
            return None
        inner, args, apply = parts[0], parts[1:], filter_fn
        return lambda s: apply(inner(s), *(a(s) for a in args))
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name):
        if node.dyn_args or node.dyn_kwargs:
            return None
        callee = compile_fast(node.node, env)
        args_ = _all(*(compile_fast(a, env) for a in node.args))
        kwargs_ = _all(*(compile_fast(k.value, env) for k in node.kwargs))
        if callee is None or args_ is None or kwargs_ is None:
            return None
        kw = list(zip([k.key for k in node.kwargs], kwargs_, strict=True))
        positional, call, function = args_, _caller(env), callee
        consts = [a for a in node.args if isinstance(a, nodes.Const)]
        kw_consts = [(k.key, k.value) for k in node.kwargs if isinstance(k.value, nodes.Const)]
        if len(consts) == len(node.args) and len(kw_consts) == len(node.kwargs):
            # `sent_within("3d", human=True)`: the usual call, its arguments known at load
            fixed = tuple(a.value for a in consts)
            fixed_kw = {key: value.value for key, value in kw_consts}
            return lambda s: call(function(s), fixed, fixed_kw)
        return lambda s: call(
            function(s), tuple(a(s) for a in positional), {k: v(s) for k, v in kw}
        )
    return None
