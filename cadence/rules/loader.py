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
from ruamel.yaml.error import MarkedYAMLError

from cadence.rules.compile import Builder
from cadence.rules.errors import RuleError, RuleErrors, suggest
from cadence.rules.model import Rules
from cadence.rules.schema import RuleFile

_KIND = {
    "limits": "limit",
    "send_windows": "send window",
    "suppress": "suppress rule",
    "merge": "merge rule",
    "playbooks": "playbook",
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
            kind = _KIND.get(loc[0], loc[0])
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


def _explain(error: Any, positions: Positions) -> RuleError:
    loc = tuple(error["loc"])
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
    key = ".".join(str(p) for p in loc if isinstance(p, str))
    message = error["msg"]
    if kind == "literal_error":
        message = f"must be {error['ctx']['expected']}, not `{error.get('input')}`"
    return positions.error(loc, f"`{key}` in {where}: {message}")


def _read(path: Path) -> tuple[Any, list[RuleError]]:
    yaml = YAML(typ="rt")
    try:
        with path.open(encoding="utf-8") as handle:
            return yaml.load(handle), []
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "cannot be read as YAML"
        return None, [RuleError(str(path), line, col, f"not valid YAML: {problem}")]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [RuleError(str(path), 1, 1, f"cannot be read: {exc}")]


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


_SECTIONS = ("limits", "send_windows", "suppress", "merge", "playbooks")


def _validate(data: dict[str, Any], positions: Positions, builder: Builder) -> list[RuleError]:
    """Each rule on its own, so one bad rule does not hide the problems of the others."""
    errors: list[RuleError] = []
    top = {k: v for k, v in data.items() if k not in _SECTIONS}
    top_model: RuleFile | None = None
    try:
        top_model = RuleFile.model_validate(top)
    except ValidationError as exc:
        errors += [_explain(e, positions) for e in exc.errors(include_url=False)]
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
                for e in exc.errors(include_url=False):
                    errors.append(_explain({**e, "loc": (section, i, *e["loc"])}, positions))
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
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        root, problems = _read(path)
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
