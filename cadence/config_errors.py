"""What is wrong with a setting, said where a person fixes it.

Pydantic names a place in the model (`transport.smtp.port`); a person edits a line of a file
or an environment variable. So each error becomes `FILE:LINE: key: reason`, or `environment
VAR: key: reason` when a `CADENCE_*` variable set it, with the closest allowed key for one
misspelt ("did you mean ...?"). The settings model is handed in (`root`): this module reads
its fields and never builds it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsError
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from cadence.config_file import CONFIG_ENV, ENV_PREFIX


def env_keys(env: Mapping[str, str]) -> dict[tuple[str, ...], str]:
    """The config keys the environment sets, each with the variable that sets it."""
    keys: dict[tuple[str, ...], str] = {}
    for name in env:
        if name.upper().startswith(ENV_PREFIX) and name.upper() != CONFIG_ENV:
            keys[tuple(name[len(ENV_PREFIX) :].lower().split("__"))] = name
    return keys


def env_var(loc: tuple[str, ...], set_by_env: Mapping[tuple[str, ...], str]) -> str | None:
    """The variable that set `loc` or a section holding it (CADENCE_TRANSPORT='{...}')."""
    for depth in range(len(loc), 0, -1):
        if loc[:depth] in set_by_env:
            return set_by_env[loc[:depth]]
    return None


def _model_at(root: type[BaseModel], loc: Sequence[str]) -> type[BaseModel] | None:
    model = root
    for part in loc:
        field = model.model_fields.get(part)
        if field is None or not isinstance(field.annotation, type):
            return None
        if not issubclass(field.annotation, BaseModel):
            return None
        model = field.annotation
    return model


def suggest(root: type[BaseModel], parent: tuple[str, ...], key: str) -> str:
    """What to write instead of an unknown `key` under `parent`: the closest allowed key, or
    the allowed ones."""
    model = _model_at(root, parent)
    if model is None:
        return ""
    allowed = list(model.model_fields)
    prefix = ".".join(parent) + "." if parent else ""
    close = difflib.get_close_matches(key.lower(), allowed, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {prefix + close[0]!r}?)"
    return " (allowed: " + ", ".join(prefix + a for a in allowed) + ")"


def _choices(root: type[BaseModel], loc: tuple[str, ...]) -> list[str] | None:
    model = _model_at(root, loc[:-1])
    field = model.model_fields.get(loc[-1]) if model else None
    if field is None or get_origin(field.annotation) is not Literal:
        return None
    return [str(a) for a in get_args(field.annotation)]


_REASONS = {
    "int_parsing": "expected a whole number",
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected text",
    "model_type": "expected a mapping of keys",
    "model_attributes_type": "expected a mapping of keys",
    "dict_type": "expected a mapping of keys",
    "path_type": "expected a path",
}


def _reason(root: type[BaseModel], error: Mapping[str, Any], loc: tuple[str, ...]) -> str:
    kind = error["type"]
    value = error.get("input")
    if kind == "literal_error":
        choices = _choices(root, loc) or []
        return f"{value!r} is not one of {', '.join(choices)}"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind in _REASONS:
        return f"{_REASONS[kind]}, not {value!r}"
    return f"{error['msg']} (got {value!r})"


def _line(data: Any, loc: tuple[str, ...]) -> int | None:
    """The 1-based line of the deepest part of `loc` the file has."""
    line: int | None = None
    node = data
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and part.isdigit() and int(part) < len(node):
            line = node.lc.item(int(part))[0] + 1
            node = node[int(part)]
        else:
            break
    return line


def describe(
    root: type[BaseModel],
    exc: ValidationError,
    file: Path | None,
    data: Any,
    env: Mapping[str, str],
) -> list[str]:
    """One line per error, the file's in line order, then the environment's."""
    keys = env_keys(env)
    problems: list[tuple[int, str]] = []
    for error in exc.errors():
        loc = tuple(str(p) for p in error["loc"])
        var = env_var(loc, keys)
        line = None
        if var is not None:
            where = f"environment {var}"
        elif file is not None:
            line = _line(data, loc)
            where = f"{file}:{line}" if line else str(file)
        else:
            where = "defaults"
        dotted = ".".join(loc)
        if error["type"] == "extra_forbidden":
            text = f"{where}: unknown key {dotted!r}{suggest(root, loc[:-1], loc[-1])}"
        else:
            text = f"{where}: {dotted}: {_reason(root, error, loc)}"
        problems.append((line if line is not None else 1 << 30, text))
    return [text for _, text in sorted(problems, key=lambda p: p[0])]


def describe_env_error(exc: SettingsError, env: Mapping[str, str]) -> str:
    """pydantic-settings' own error names the field, not the variable; name the variable."""
    match = re.search(r'field "(\w+)"', str(exc))
    var = env_var((match[1],), env_keys(env)) if match else None
    if var is None:
        return f"environment: {exc}"
    return f"environment {var}: {match[1] if match else ''}: not valid JSON for this section"
