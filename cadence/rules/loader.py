"""Reading a rules folder: every `*.yaml`, validated, compiled once into frozen `Rules`.

ruamel.yaml keeps the line and column of every key and value, so each problem is reported as
`FILE:LINE:COL: message`, and every problem in every file is reported at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError

from cadence.durations import parse_duration
from cadence.rules.compile import Builder, parse_at, parse_days, parse_hours
from cadence.rules.errors import RuleError, RuleErrors, suggest
from cadence.rules.model import Rules
from cadence.rules.schema import TEXT_KINDS, RuleFile
from cadence.rules.yaml_errors import describe as describe_yaml_error

#: each section of a rule file, and what one of its rules is called in a message
KINDS = {
    "limits": "limit",
    "send_windows": "send window",
    "suppress": "suppress rule",
    "hold": "hold rule",
    "merge": "merge rule",
    "playbooks": "playbook",
    "cancel": "cancel rule",
}


class Positions:
    """Turns a path into the YAML document (`("limits", 0, "max")`) into a line and column."""

    def __init__(self, file: str, root: Any) -> None:
        self.file = file
        self.root = root

    def at(self, loc: Sequence[str | int], *, key: bool = False) -> tuple[int, int]:
        node = self.root
        line, col = 0, 0
        if isinstance(node, CommentedMap | CommentedSeq):
            line, col = node.lc.line, node.lc.col
        for i, part in enumerate(loc):
            last = i == len(loc) - 1
            if isinstance(node, CommentedMap) and part in node:
                pos = node.lc.key(part) if (key and last) else node.lc.value(part)
                line, col = pos
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                line, col = node.lc.item(part)
                node = node[part]
            else:
                break
        return line + 1, col + 1

    def error(self, loc: Sequence[str | int], message: str, *, key: bool = False) -> RuleError:
        line, col = self.at(loc, key=key)
        return RuleError(self.file, line, col, message)

    def name_of(self, loc: Sequence[str | int]) -> str:
        """`limit `weekly-total`` for a location inside the first rule of `limits`."""
        if len(loc) >= 2 and isinstance(loc[0], str) and isinstance(loc[1], int):
            kind = KINDS.get(loc[0], loc[0])
            items = self.root.get(loc[0]) if isinstance(self.root, CommentedMap) else None
            item = (
                items[loc[1]] if isinstance(items, CommentedSeq) and loc[1] < len(items) else None
            )
            if isinstance(item, CommentedMap) and isinstance(item.get("name"), str):
                return f"{kind} `{item['name']}`"
            return f"{kind} #{loc[1] + 1}"
        return "the file"


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The pydantic model of the mapping at `loc` (for the keys it allows)."""
    model: type[BaseModel] = RuleFile
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        found = None
        for candidate in _types(field.annotation):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                found = candidate
        if found is None:
            return None
        model = found
    return model


def _types(annotation: Any) -> list[Any]:
    args = getattr(annotation, "__args__", None)
    if not args:
        return [annotation]
    return [t for a in args for t in _types(a)]


# pydantic's own words for a wrong type, in the words of someone editing YAML
_SHOULD = {
    "string_type": "should be text",
    "int_type": "should be a whole number",
    "int_parsing": "should be a whole number",
    "int_from_float": "should be a whole number",
    "bool_type": "should be true or false",
    "bool_parsing": "should be true or false",
    "list_type": "should be a list, like [a, b]",
    "dict_type": "should be a mapping of keys, like {a: 1}",
    "model_type": "should be a mapping of keys",
    "model_attributes_type": "should be a mapping of keys",
}
# the members of a union (`on: str | list[str]`) appear in pydantic's `loc`; not in the YAML
_UNION_TAGS = frozenset({"str", "list[str]", "int", "bool"})


def _text_problem(key: str, value: Any, loc: Sequence[str | int]) -> str | None:
    """What the parser of a duration/days/hours/time field says about a wrong value."""
    kind = TEXT_KINDS.get(key)
    if kind is None or (key == "window" and loc[:1] == ("limits",)):
        return None
    parse = {"duration": parse_duration, "days": parse_days, "hours": parse_hours}.get(
        kind, parse_at
    )
    try:
        parse(str(value))
    except ValueError as exc:
        return str(exc)
    return None


def _explain(error: Any, positions: Positions) -> RuleError:
    loc = tuple(p for p in error["loc"] if p not in _UNION_TAGS)
    kind = error["type"]
    where = positions.name_of(loc)
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = sorted(model.model_fields) if model else []
        key = str(loc[-1])
        return positions.error(
            loc,
            f"unknown key `{key}` in {where}; allowed: {', '.join(allowed)}{suggest(key, allowed)}",
            key=True,
        )
    if kind == "missing":
        return positions.error(loc[:-1], f"{where} needs `{loc[-1]}`")
    inside = loc[2:] if where != "the file" else loc
    key = ".".join(str(p) for p in inside)
    value = error.get("input")
    scalar = isinstance(value, str | int | float | bool) or value is None
    if kind in _SHOULD and not inside and len(loc) == 2:
        return positions.error(loc, f"{where} {_SHOULD[kind]} (`name: ...` and its keys)")
    problem = _text_problem(str(loc[-1]), value, loc) if kind == "string_type" else None
    if problem is not None:
        message = problem
    elif kind == "literal_error":
        expected = error["ctx"]["expected"]
        choices = [c.strip(" '") for c in expected.replace(" or ", ",").split(",")]
        message = f"must be {expected}, not `{value}`{suggest(str(value), choices)}"
    elif kind in _SHOULD:
        message = _SHOULD[kind] + (f", not `{_yaml(value)}`" if scalar else "")
    elif kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = {"greater_than_equal": "at least", "greater_than": "more than"}.get(
            kind, "at most" if kind == "less_than_equal" else "less than"
        )
        limit = next(iter(error["ctx"].values()))
        message = f"should be {bound} {limit}, not `{_yaml(value)}`"
    else:
        message = str(error["msg"])
    label = f"`{key}` in {where}" if where != "the file" else f"`{key}`"
    return positions.error(loc, f"{label}: {message}")


def _yaml(value: Any) -> str:
    """A value as it was written in YAML (`true`, not Python's `True`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def _dedupe(errors: list[RuleError]) -> list[RuleError]:
    """A union (`on: text or a list`) fails once per member, at one place: say it once."""
    out: dict[tuple[str, int, int], RuleError] = {}
    for error in errors:
        at = (error.file, error.line, error.column)
        seen = out.get(at)
        if seen is None:
            out[at] = error
        elif seen.message != error.message and "should be" in error.message:
            more = error.message.split("should be", 1)[1].split(", not")[0]
            head, sep, tail = seen.message.partition(", not")
            out[at] = RuleError(*at, f"{head} or{more}{sep}{tail}")
    return list(out.values())


class _TextDates(RoundTripConstructor):
    """YAML reads an unquoted `2027-01-01` as a date, and `2027-02-30` as a crash; rule
    files have no dates of their own kind, so a timestamp stays text and the rules say
    what is wrong with it, at its place (a blackout's day)."""


_TextDates.add_constructor("tag:yaml.org,2002:timestamp", RoundTripConstructor.construct_yaml_str)


def _read(path: Path, raw: bytes) -> tuple[Any, list[RuleError]]:
    """The round-trip loader keeps every key's and value's line and column (`.lc`)."""
    yaml = YAML(typ="rt")
    yaml.Constructor = _TextDates
    try:
        text = raw.decode("utf-8")
        return yaml.load(text), []
    except MarkedYAMLError as exc:
        # most parse errors in a hand-written rule file are indentation: said as such
        line, col, problem = describe_yaml_error(exc, text)
        return None, [RuleError(str(path), line, col, problem)]
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [RuleError(str(path), line, col, "not UTF-8 text: save the file as UTF-8")]


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


_SECTIONS = ("limits", "send_windows", "suppress", "hold", "merge", "playbooks", "cancel")


def _validate(data: dict[str, Any], positions: Positions, builder: Builder) -> list[RuleError]:
    """Each rule on its own, so one bad rule does not hide the problems of the others."""
    errors: list[RuleError] = []
    top = {k: v for k, v in data.items() if k not in _SECTIONS}
    top_model: RuleFile | None = None
    try:
        top_model = RuleFile.model_validate(top)
    except ValidationError as exc:
        errors += _dedupe([_explain(e, positions) for e in exc.errors(include_url=False)])
    if top_model is not None:
        builder.add_top(positions, top_model.priorities, top_model.max_delay)
    for section in _SECTIONS:
        items = data.get(section)
        if items is None:
            continue
        if not isinstance(items, list):
            errors.append(
                positions.error((section,), f"`{section}` is a list (items start with -)")
            )
            continue
        model = _model_at((section, 0))
        assert model is not None
        for i, item in enumerate(items):
            try:
                valid = model.model_validate(item)
            except ValidationError as exc:
                errors += _dedupe(
                    [
                        _explain({**e, "loc": (section, i, *e["loc"])}, positions)
                        for e in exc.errors(include_url=False)
                    ]
                )
                continue
            builder.add_item(positions, section, i, valid)
    return errors


def load_rules(directory: Path) -> Rules:
    """Every `*.yaml` in `directory`, compiled. Raises RuleErrors with every problem found."""
    directory = Path(directory)
    if not directory.is_dir():
        raise RuleErrors(
            [
                RuleError(
                    str(directory),
                    1,
                    1,
                    "no such rules folder (`cadence init` writes one; or set rules_dir)",
                )
            ]
        )
    files = sorted(directory.glob("*.yaml"))
    errors: list[RuleError] = []
    builder = Builder()
    digest = hashlib.sha256()
    for path in files:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            errors.append(RuleError(str(path), 1, 1, f"cannot be read: {exc}"))
            continue
        digest.update(path.name.encode() + b"\0" + raw + b"\0")
        root, problems = _read(path, raw)
        errors += problems
        if problems:
            continue
        positions = Positions(str(path), root)
        if root is None:
            continue  # an empty file (or only comments) is fine
        if not isinstance(root, CommentedMap):
            errors.append(positions.error((), "a rule file is a mapping of keys like limits:"))
            continue
        errors += _validate(_plain(root), positions, builder)
    errors += builder.errors
    if errors:
        raise RuleErrors(sorted(errors, key=lambda e: (e.file, e.line, e.column)))
    return builder.rules(version=digest.hexdigest()[:12], files=tuple(str(p) for p in files))
