"""Where a rules folder names templates and event types, to the line and column of the name
itself: `rules check` points a template's problem at the `template:` that names it, and an
unknown event type at the `on:` or `cancel_on:` (of a playbook or a cancel rule) that names
it.

Read straight from the YAML, apart from loading the rules, so these are found also in a
folder whose other rules have errors: `rules check` reports every problem in one run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from cadence.rules.model import Location

#: the template a merge rule renders when it names none (the contract's default)
DEFAULT_DIGEST = "digest"


@dataclass(frozen=True, slots=True)
class Site:
    """A name written in a rule: `what` the rule is (`merge rule `x``), `key` the key that
    holds the name (`template`, `on`, `cancel_on`)."""

    name: str
    key: str
    what: str
    location: Location


def _value_at(node: CommentedMap, key: str, file: str) -> Location:
    line, col = node.lc.value(key)
    return Location(file, line + 1, col + 1)


def _item_at(node: CommentedSeq, i: int, file: str) -> Location:
    line, col = node.lc.item(i)
    return Location(file, line + 1, col + 1)


def _names(node: CommentedMap, key: str, file: str) -> list[tuple[str, Location]]:
    """The text value of `key`, or each text item of its list, with where it is written."""
    value = node.get(key)
    if isinstance(value, str):
        return [(value, _value_at(node, key, file))]
    if isinstance(value, CommentedSeq):
        return [(v, _item_at(value, i, file)) for i, v in enumerate(value) if isinstance(v, str)]
    return []


def _items(root: CommentedMap, section: str) -> list[tuple[int, CommentedMap]]:
    items = root.get(section)
    if not isinstance(items, CommentedSeq):
        return []
    return [(i, item) for i, item in enumerate(items) if isinstance(item, CommentedMap)]


def _label(kind: str, i: int, item: CommentedMap) -> str:
    name = item.get("name")
    return f"{kind} `{name}`" if isinstance(name, str) else f"{kind} #{i + 1}"


def _file_sites(path: Path) -> tuple[list[Site], list[Site]]:
    file = str(path)
    try:
        root: Any = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, YAMLError):  # ValueError: not UTF-8, an impossible date
        return [], []  # the loader reports a file it cannot read
    if not isinstance(root, CommentedMap):
        return [], []
    templates: list[Site] = []
    events: list[Site] = []
    for i, item in _items(root, "merge"):
        what = _label("merge rule", i, item)
        named = _names(item, "template", file)
        if named:
            templates += [Site(n, "template", what, at) for n, at in named]
        else:
            line, col = root["merge"].lc.item(i)
            templates.append(
                Site(DEFAULT_DIGEST, "template", what, Location(file, line + 1, col + 1))
            )
    for i, item in _items(root, "cancel"):
        what = _label("cancel rule", i, item)
        events += [Site(n, "on", what, at) for n, at in _names(item, "on", file)]
    for i, item in _items(root, "playbooks"):
        what = _label("playbook", i, item)
        send = item.get("send")
        if isinstance(send, CommentedMap):
            templates += [Site(n, "template", what, at) for n, at in _names(send, "template", file)]
        for key in ("on", "cancel_on"):
            events += [Site(n, key, what, at) for n, at in _names(item, key, file)]
    return templates, events


def sites(directory: Path) -> tuple[list[Site], list[Site]]:
    """(the templates, the event types) every `*.yaml` in `directory` names, in file order."""
    templates: list[Site] = []
    events: list[Site] = []
    for path in sorted(Path(directory).glob("*.yaml")):
        t, e = _file_sites(path)
        templates += t
        events += e
    return templates, events
