"""Compiling the common shapes of `when` expressions into plain closures.

Jinja2 builds a fresh render context on every call, which costs more than the rule itself; the
planner evaluates `when`s for every message of every customer. The expressions CSMs write are
small (names, attributes, constants, comparisons, and/or/not, the `default` filter, the
`defined` test, our helper functions), so those shapes are turned, once at load, into closures
with the same meaning, the same strictness (a missing attribute raises) and no more reach than
the sandbox: attribute access goes through `getattr` on the values we hand in, never to names
starting with an underscore, and the only calls are the helpers in the scope. Anything else
returns None and is left to Jinja.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import nodes

Scope = Mapping[str, Any]
Fn = Callable[[Scope], Any]


class Undefined(Exception):
    """A name or attribute that is not there (StrictUndefined's meaning)."""


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
_FILTERS: dict[str, Callable[..., Any]] = {
    "lower": lambda v: v.lower(),
    "upper": lambda v: v.upper(),
    "length": len,
    "int": int,
    "float": float,
    "abs": abs,
    "round": round,
    "string": str,
}
_MISSING = object()


def _attr(value: Any, name: str) -> Any:
    if name.startswith("_"):
        raise Undefined(f"{name!r} is not available")
    try:
        return getattr(value, name)
    except AttributeError:
        pass
    try:
        return value[name]
    except (KeyError, TypeError, IndexError, AttributeError):
        raise Undefined(f"{value!r} has no attribute {name!r}") from None


def _all(*parts: Fn | None) -> list[Fn] | None:
    """The parts, when every one compiled; else None (the whole is left to Jinja)."""
    if any(p is None for p in parts):
        return None
    return [p for p in parts if p is not None]


def compile_fast(node: nodes.Node) -> Fn | None:
    """A closure for `node`, or None when it has a shape we leave to Jinja."""
    if isinstance(node, nodes.Const):
        value = node.value
        return lambda s: value
    if isinstance(node, nodes.Name):
        name = node.name

        def load(s: Scope) -> Any:
            v = s.get(name, _MISSING)
            if v is _MISSING:
                raise Undefined(f"{name!r} is undefined")
            return v

        return load
    if isinstance(node, nodes.Getattr):
        got = _all(compile_fast(node.node))
        if got is None:
            return None
        inner, attr = got[0], node.attr
        return lambda s: _attr(inner(s), attr)
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        got = _all(compile_fast(node.node))
        key = node.arg.value
        if got is None or not isinstance(key, str | int):
            return None
        inner = got[0]
        if isinstance(key, str):
            return lambda s: _attr(inner(s), key)
        return lambda s: inner(s)[key]
    if isinstance(node, nodes.List | nodes.Tuple):
        items = _all(*(compile_fast(i) for i in node.items))
        if items is None:
            return None
        return lambda s: [i(s) for i in items]
    if isinstance(node, nodes.Not | nodes.Neg):
        got = _all(compile_fast(node.node))
        if got is None:
            return None
        inner = got[0]
        if isinstance(node, nodes.Not):
            return lambda s: not inner(s)
        return lambda s: -inner(s)
    if isinstance(node, nodes.And | nodes.Or):
        pair = _all(compile_fast(node.left), compile_fast(node.right))
        if pair is None:
            return None
        left, right = pair
        if isinstance(node, nodes.And):
            return lambda s: left(s) and right(s)
        return lambda s: left(s) or right(s)
    if isinstance(node, nodes.BinExpr):
        op = _BINARY.get(type(node))
        pair = _all(compile_fast(node.left), compile_fast(node.right))
        if op is None or pair is None:
            return None
        fn, (lhs, rhs) = op, pair
        return lambda s: fn(lhs(s), rhs(s))
    if isinstance(node, nodes.Compare):
        exprs = _all(compile_fast(node.expr), *(compile_fast(o.expr) for o in node.ops))
        fns = [_COMPARE.get(o.op) for o in node.ops]
        if exprs is None or any(f is None for f in fns):
            return None
        chain = list(zip([f for f in fns if f is not None], exprs[1:], strict=True))
        first = exprs[0]

        def compare(s: Scope) -> bool:
            left = first(s)
            for fn, expr in chain:
                right = expr(s)
                if not fn(left, right):
                    return False
                left = right
            return True

        return compare
    if isinstance(node, nodes.Test) and node.name in ("defined", "undefined", "none"):
        got = _all(compile_fast(node.node)) if not node.args else None
        if got is None:
            return None
        inner, kind = got[0], node.name

        def test(s: Scope) -> bool:
            try:
                value = inner(s)
            except Undefined:
                return kind == "undefined"
            if kind == "none":
                return value is None
            return kind == "defined"

        return test
    if isinstance(node, nodes.Filter):
        if node.node is None or node.kwargs or node.dyn_args or node.dyn_kwargs:
            return None
        parts = _all(compile_fast(node.node), *(compile_fast(a) for a in node.args))
        if parts is None:
            return None
        inner, args = parts[0], parts[1:]
        if node.name in ("default", "d") and len(args) <= 1:
            fallback: Fn = args[0] if args else (lambda s: "")

            def default(s: Scope) -> Any:
                try:
                    return inner(s)
                except Undefined:
                    return fallback(s)

            return default
        filter_fn = _FILTERS.get(node.name)
        if filter_fn is None:
            return None
        apply = filter_fn
        return lambda s: apply(inner(s), *(a(s) for a in args))
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name):
        if node.dyn_args or node.dyn_kwargs:
            return None
        helper = node.node.name
        args_ = _all(*(compile_fast(a) for a in node.args))
        values = _all(*(compile_fast(k.value) for k in node.kwargs))
        if args_ is None or values is None:
            return None
        kw = list(zip([k.key for k in node.kwargs], values, strict=True))
        positional = args_
        consts = [a for a in node.args if isinstance(a, nodes.Const)]
        kw_consts = [(k.key, k.value) for k in node.kwargs if isinstance(k.value, nodes.Const)]
        if len(consts) == len(node.args) and len(kw_consts) == len(node.kwargs):
            # `sent_within("3d", human=True)`: the usual call, its arguments known at load
            fixed = tuple(a.value for a in consts)
            fixed_kw = {key: value.value for key, value in kw_consts}

            def call_fixed(s: Scope) -> Any:
                fn = s.get(helper)
                if not callable(fn):
                    raise Undefined(f"{helper!r} is not a function")
                return fn(*fixed, **fixed_kw)

            return call_fixed

        def call(s: Scope) -> Any:
            fn = s.get(helper)
            if not callable(fn):
                raise Undefined(f"{helper!r} is not a function")
            return fn(*(a(s) for a in positional), **{k: v(s) for k, v in kw})

        return call
    return None
