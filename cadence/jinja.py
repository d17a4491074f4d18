"""The one Jinja2 sandbox, shared by rule expressions and email templates.

The contract promises a single expression language for both; building both environments here
keeps their filters, tests and undefined-handling the same.

The sandbox also bounds what one operation may make: a string, byte string, list or tuple of
more than MAX_SIZE characters or items, or a number of more than MAX_SIZE digits. Jinja's
sandbox keeps code from reaching what it must not, but `('a' * 10**10) | length` would still
ask for ten gigabytes, and the process would die or the rule would fail with an empty
MemoryError. So each operation that can make much more than it is given is checked before it
runs: the operators `*`, `+`, `**` and `%` (intercepted, so Jinja also stops folding them at
load), the padding, joining and replacing methods of strings, `format` widths, and the filters
and globals that pad, join, replace, wrap or fill. A refused operation raises TooLarge, a
SecurityError whose message names the operation and the limit. Jinja's own bound on `range`
(MAX_RANGE, 100,000 items) stays. The bound is per operation: it stops one runaway request,
not a template that builds a large text in many small steps.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from functools import update_wrapper, wraps
from string import Formatter
from typing import Any

from jinja2 import BaseLoader, StrictUndefined
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import generate_lorem_ipsum

#: the most characters, items or digits one operation in an expression or template may make
MAX_SIZE = 1_000_000

_SEQUENCES = (str, bytes, bytearray, list, tuple)
_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "*": operator.mul,
    "+": operator.add,
    "**": operator.pow,
    "%": operator.mod,
}


class TooLarge(SecurityError):
    """An operation would make a value larger than MAX_SIZE; the message says which and how
    large."""


def _show(value: Any) -> str:
    """A value as an error message shows it, cut short (and cheap for a long one)."""
    if isinstance(value, str | bytes | bytearray):
        text = repr(value[:20])
        return text if len(value) <= 20 else f"{text[:-1]}...{text[-1]}"
    if isinstance(value, list | tuple) and len(value) > 8:
        return f"<a {type(value).__name__} of {len(value)} items>"
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:20]}..."


def _made(like: Any, size: int) -> str:
    if isinstance(like, str):
        return f"a string of {size} characters"
    if isinstance(like, bytes | bytearray):
        return f"a byte string of {size} bytes"
    if isinstance(like, tuple):
        return f"a tuple of {size} items"
    return f"a list of {size} items"


def _bound(doing: Callable[[], str], like: Any, size: int) -> None:
    """Raise TooLarge when `doing()` (what the template does, put in words only when it is
    refused: most checks pass) would make something like `like` of `size`."""
    if size > MAX_SIZE:
        raise TooLarge(f"{doing()} would make {_made(like, size)}; the limit is {MAX_SIZE}")


def _big(number: str) -> bool:
    """Whether a run of digits is beyond MAX_SIZE (without int() of thousands of digits)."""
    digits = number.lstrip("0")
    return len(digits) > len(str(MAX_SIZE)) or int(digits or "0") > MAX_SIZE


def _values(given: Any) -> list[Any]:
    """The values a format is given, whatever their shape: a tuple of arguments, a mapping
    of names (its values), or one value."""
    if isinstance(given, Mapping):
        return list(given.values())
    if isinstance(given, tuple | list):
        return [v for g in given for v in (g.values() if isinstance(g, Mapping) else (g,))]
    return [given]


def _widths(doing: Callable[[], str], spec: str, given: Any = None) -> None:
    """A format's field widths and precisions, and the numbers `given` for a `*` or a nested
    field, must stay within MAX_SIZE: a width is how many characters the field becomes."""
    wide = [n for n in _DIGITS.findall(spec) if _big(n)]
    if given is not None:
        wide += [str(v) for v in _values(given) if isinstance(v, int) and abs(v) > MAX_SIZE]
    if wide:
        width = wide[0] if len(wide[0]) <= 24 else f"{wide[0][:20]}..."
        raise TooLarge(
            f"{doing()} would pad a field to {width} characters; the limit is {MAX_SIZE}"
        )


def _printf(template: Any, args: Any) -> None:
    """`'%10d' % n` and the `format` filter: the widths of a printf-style template."""
    text = template.decode("latin-1") if isinstance(template, bytes | bytearray) else template
    if not isinstance(text, str):
        return
    specs = _PRINTF.findall(text)
    starred = any("*" in (width, precision) for width, precision in specs)
    spec = " ".join(f"{width} {precision}" for width, precision in specs)
    _widths(lambda: f"{_show(template)} % ...", spec, args if starred else None)


def checked_binop(op: str, left: Any, right: Any) -> Any:
    """`left op right` for the operators the sandbox intercepts, refused when the result would
    be beyond MAX_SIZE (checked from the operands' sizes, before anything is made)."""

    def doing() -> str:
        return f"{_show(left)} {op} {_show(right)}"

    if op == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, _SEQUENCES) and isinstance(times, int):
                _bound(doing, seq, len(seq) * times)
    elif op == "+" and isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
        _bound(doing, left, len(left) + len(right))
    elif op == "**" and isinstance(left, int) and isinstance(right, int):
        if right > 0 and abs(left) > 1:
            # the exponent is capped so the estimate stays a float; past the cap it is huge
            digits = math.floor(min(right, 10**200) * math.log10(abs(left))) + 1
            if digits > MAX_SIZE:
                raise TooLarge(
                    f"{doing()} would make a number of {digits} digits; the limit is {MAX_SIZE}"
                )
    elif op == "%" and isinstance(left, str | bytes | bytearray):
        _printf(left, right)
    return _OPERATORS[op](left, right)


def _method(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Check a call of a string's padding, joining or replacing method; returns the arguments
    to call it with (a `join` gets its items as a list, so they are counted once)."""
    owner, name = getattr(obj, "__self__", None), getattr(obj, "__name__", "")
    if not isinstance(owner, str | bytes | bytearray):
        return args

    def doing() -> str:
        shown = [_show(a) for a in args] + [f"{k}={_show(v)}" for k, v in kwargs.items()]
        return f"{_show(owner)}.{name}({', '.join(shown)})"

    if name in ("ljust", "rjust", "center", "zfill"):
        width = args[0] if args else kwargs.get("width")
        if isinstance(width, int):
            _bound(doing, owner, width)
    elif name == "expandtabs":
        tab = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(tab, int):
            tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
            _bound(doing, owner, len(owner) + tabs * tab)
    elif name == "replace" and len(args) >= 2:
        _bound(doing, owner, _replaced(owner, args[0], args[1], args[2:3], kwargs))
    elif name == "join" and args:
        items = list(args[0])
        sizes = sum(len(i) if isinstance(i, _SEQUENCES) else 1 for i in items)
        _bound(doing, owner, sizes + len(owner) * max(len(items) - 1, 0))
        return (items, *args[1:])
    return args


def _replaced(text: Any, old: Any, new: Any, count: Any, kwargs: Mapping[str, Any]) -> int:
    """The length of `text` with `old` replaced by `new` (at most `count` times)."""
    if not isinstance(old, type(text)) or not isinstance(new, type(text)):
        return len(text)
    limit = count[0] if count else kwargs.get("count", -1)
    hits = text.count(old) if old else len(text) + 1
    if isinstance(limit, int) and limit >= 0:
        hits = min(hits, limit)
    return int(len(text) + hits * (len(new) - len(old)))


# --- filters and globals -----------------------------------------------------------------


def _guard(fn: Callable[..., Any], check: Callable[..., None]) -> Callable[..., Any]:
    """`fn` (a filter or a global) with `check` run on its arguments first; the argument Jinja
    passes itself (an environment or eval context) is kept, and not shown to `check`."""
    skip = 1 if getattr(fn, "jinja_pass_arg", None) is not None else 0

    @wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        check(*args[skip:], **kwargs)
        return fn(*args, **kwargs)

    return guarded


# Each check takes the filter's own parameters, by the same names (a template may pass any
# of them by name), and raises TooLarge before the filter makes anything.


def _center(value: Any, width: Any = 80) -> None:
    if isinstance(width, int):
        _bound(lambda: f"center({width})", "", width)


def _indent(s: Any, width: Any = 4, first: Any = False, blank: Any = False) -> None:
    text = str(s)
    pad = width if isinstance(width, int) else len(str(width))
    _bound(lambda: f"indent({_show(width)})", "", len(text) + (text.count("\n") + 1) * pad)


def _format(value: Any, *args: Any, **kwargs: Any) -> None:
    _printf(str(value), kwargs or args)


def _join(value: Any, d: Any = "", attribute: Any = None) -> None:
    # a sized value: the separator times the items; a generator's items are not counted
    # here (`range` gives at most 100,000)
    if hasattr(value, "__len__") and isinstance(d, str):
        _bound(lambda: f"join({_show(d)})", "", len(d) * max(len(value) - 1, 0))


def _replace(s: Any, old: Any, new: Any, count: Any = None) -> None:
    text = str(s)
    limit = (count,) if isinstance(count, int) else ()
    _bound(lambda: f"replace({_show(old)}, {_show(new)})", "", _replaced(text, old, new, limit, {}))


def _wordwrap(
    s: Any,
    width: Any = 79,
    break_long_words: Any = True,
    wrapstring: Any = None,
    break_on_hyphens: Any = True,
) -> None:
    # greedy wrapping: two lines in a row hold more than `width`, so breaks < 2 * len / width
    text, sep = str(s), wrapstring if isinstance(wrapstring, str) else "\n"
    if isinstance(width, int) and width > 0:
        breaks = 2 * len(text) // width + text.count("\n") + 1
        _bound(lambda: f"wordwrap({width}, {_show(sep)})", "", len(text) + breaks * len(sep))


def _batch(value: Any, linecount: Any, fill_with: Any = None) -> None:
    # only the padding of the last batch makes more than the filter was given
    if isinstance(linecount, int) and fill_with is not None:
        _bound(lambda: f"batch({linecount}, {_show(fill_with)})", [], linecount)


def _slice(value: Any, slices: Any, fill_with: Any = None) -> None:
    if isinstance(slices, int):
        _bound(lambda: f"slice({slices})", [], slices)


def _lipsum(n: Any = 5, html: Any = True, min: Any = 20, max: Any = 100) -> None:
    if isinstance(n, int) and isinstance(max, int):
        _bound(lambda: f"lipsum({n}, max={max})", "", n * max)  # at least a character a word


_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": _center,
    "indent": _indent,
    "format": _format,
    "join": _join,
    "replace": _replace,
    "wordwrap": _wordwrap,
    "batch": _batch,
    "slice": _slice,
}


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with every operation that can make far more than it is
    given checked against MAX_SIZE first."""

    intercepted_binops = frozenset(_OPERATORS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # whether an attribute is safe, by the object's type and the attribute's name
        self._safe: dict[tuple[type, str], bool] = {}
        for name, check in _FILTER_CHECKS.items():
            self.filters[name] = _guard(self.filters[name], check)
        self.globals["lipsum"] = _guard(generate_lorem_ipsum, _lipsum)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        return checked_binop(operator, left, right)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        """Jinja's answer, kept per type and name: it reads nothing else (the name, and
        `isinstance` against the types it guards), and rules and templates ask the same few
        attributes of the same few types for every message."""
        key = (type(obj), attr)
        found = self._safe.get(key)
        if found is None:
            found = self._safe[key] = super().is_safe_attribute(obj, attr, value)
        return found

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        return super().call(context, obj, *_method(obj, args, kwargs), **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """`'{:>10}'.format(x)`: Jinja's sandboxed format, with its widths checked first."""
        formats = super().wrap_str_format(value)
        if formats is None:
            return None
        template = value.__self__

        def bounded(*args: Any, **kwargs: Any) -> str:
            try:
                fields = list(Formatter().parse(template))
            except ValueError:  # a malformed format: the call itself says so
                fields = []
            spec = " ".join(spec or "" for _, _, spec, _ in fields)
            # a nested field (`{:{width}}`) takes its width from the arguments
            given = (*args, kwargs) if "{" in spec else None
            _widths(lambda: f"{_show(template)}.{value.__name__}(...)", spec, given)
            return formats(*args, **kwargs)

        return update_wrapper(bounded, value)


def sandbox(
    loader: BaseLoader | None = None, *, html: bool = False, auto_reload: bool = True
) -> BoundedSandbox:
    """A sandboxed environment where an undefined name is an error, never a silent blank.

    `html=True` autoescapes everything rendered, for the HTML part of an email. Without
    `auto_reload`, a template once compiled is used as it is (no look at its file's time).
    """
    return BoundedSandbox(
        loader=loader,
        auto_reload=auto_reload,
        undefined=StrictUndefined,
        autoescape=html,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
