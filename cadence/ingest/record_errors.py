"""A record that does not fit, in one line a person can act on: each field named, with what
is wrong with it ("missing field `customer`", "unknown field `sent_att` (did you mean
`sent_at`?)", "`priority` must be a whole number, not \"high\""), never pydantic's dump."""

from __future__ import annotations

import difflib

from pydantic import BaseModel, ValidationError

from cadence.ingest.records import INT32, FromIn
from cadence.words import show

_MUST = {
    "string_type": "must be text",
    "int_type": "must be a whole number",
    "bool_type": "must be true or false",
    "dict_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "datetime_type": "must be a time like 2026-11-02T09:00:00Z",
}


_NESTED: dict[str, type[BaseModel]] = {"from": FromIn}


def _field_names(model: type[BaseModel]) -> list[str]:
    return sorted(f.alias or name for name, f in model.model_fields.items())


def _unknown(loc: str, model: type[BaseModel]) -> str:
    """An unknown field, with the likely intended one or the list of those allowed."""
    parent, _, name = loc.rpartition(".")
    allowed = _field_names(_NESTED.get(parent, model))
    close = difflib.get_close_matches(name, allowed, n=1)
    if close:
        return f"unknown field `{loc}` (did you mean `{close[0]}`?)"
    # a CRM export's own column (`plan`) is most often meant as an attribute
    attribute = (
        f"; an attribute goes inside `attributes` (as a CSV column: `attributes.{name}`)"
        if not parent and "attributes" in allowed
        else ""
    )
    return f"unknown field `{loc}`; allowed: {', '.join(allowed)}{attribute}"


def explain(exc: ValidationError, model: type[BaseModel]) -> str:
    """Pydantic's errors as one line: each names its field and says what is wrong with it."""
    parts: list[str] = []
    missing: list[str] = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in error["loc"])
        kind = error["type"]
        if kind == "missing":
            missing.append(f"`{loc}`")
        elif kind == "extra_forbidden":
            parts.append(_unknown(loc, model))
        elif kind == "value_error":
            message = str(error["ctx"]["error"]) if "ctx" in error else error["msg"]
            parts.append(f"`{loc}`: {message}" if loc else message)
        elif kind == "string_too_short":
            parts.append(f"`{loc}` must not be empty")
        elif kind in _MUST:
            parts.append(f"`{loc}` {_MUST[kind]}, not {show(error['input'])}")
        elif kind in ("less_than_equal", "greater_than_equal"):
            parts.append(f"`{loc}` must be between {-INT32} and {INT32}")
        else:
            parts.append(f"`{loc}`: {error['msg']}" if loc else error["msg"])
    if missing:
        label = "missing field" if len(missing) == 1 else "missing fields"
        parts.insert(0, f"{label} {', '.join(missing)}")
    return "; ".join(parts)
