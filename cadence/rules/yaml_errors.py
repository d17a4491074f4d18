"""A YAML parse error in the words of someone editing a rule file.

ruamel.yaml says `expected <block end>, but found '<block mapping start>'` for a key indented
one space too few, and `mapping values are not allowed here` for one indented too deep: true
of its parser, not of the file. Most such errors in a hand-written rule file are indentation,
so these become `bad indentation: ...`, at the line and column where the misplaced key
starts, naming the key above that the line should line up with. A tab gets its own words.
Anything else keeps ruamel's text after `not valid YAML:`.
"""

from __future__ import annotations

import re

from ruamel.yaml.error import MarkedYAMLError

_WORD = re.compile(r"-?\s*([^\s:#]+)")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _word(line: str) -> str:
    """The key or item a line starts with (`per` for `   per: 7d`, `- name` for an item)."""
    match = _WORD.match(line.strip())
    word = match.group(1) if match else line.strip()
    return f"- {word}" if line.strip().startswith("- ") else word


def _content(lines: list[str], before: int) -> list[tuple[int, str]]:
    """(0-based index, text) of the lines before `before` that hold something, nearest first."""
    out = []
    for i in range(min(before, len(lines)) - 1, -1, -1):
        text = lines[i]
        if text.strip() and not text.strip().startswith("#"):
            out.append((i, text))
    return out


def _key_column(line: str) -> int:
    """The 1-based column of the key a line holds, after an item's dash when it has one."""
    col = _indent(line)
    if line[col:].startswith("- "):
        rest = line[col + 2 :]
        col += 2 + _indent(rest)
    return col + 1


def _starts(lines: list[str], before: int) -> list[tuple[int, int, str]]:
    """Where the keys and items above line `before` start: (1-based column, 1-based line,
    word), nearest line first. An item `- name: x` starts a key too, after its dash."""
    found = []
    for i, text in _content(lines, before):
        found.append((_indent(text) + 1, i + 1, _word(text)))
        key = _key_column(text)
        if key != _indent(text) + 1:
            found.append((key, i + 1, _word(text[key - 1 :])))
    return found


def _misaligned(lines: list[str], row: int) -> tuple[int, int, str]:
    """A line whose indentation matches no key or item above it."""
    text = lines[row]
    col = _indent(text) + 1
    word = _word(text)
    starts = _starts(lines, row)
    if not starts:
        return row + 1, col, f"bad indentation: `{word}` at column {col}"
    best = min(starts, key=lambda s: (abs(s[0] - col), row - s[1]))
    if best[0] != col:
        return (
            row + 1,
            col,
            f"bad indentation: `{word}` starts at column {col}, where no key or item above "
            f"it does; `{best[2]}` on line {best[1]} starts at column {best[0]}",
        )
    # in line with a list's dashes, but not an item: a key of the item above, indented short
    above = lines[best[1] - 1]
    key = _key_column(above)
    if not above[col - 1 :].startswith("- "):
        problem = "it lines up with a key above but cannot follow it there"
        return row + 1, col, f"bad indentation: `{word}` at column {col}: {problem}"
    return (
        row + 1,
        col,
        f"bad indentation: `{word}` at column {col} is in line with the `-` of the item on "
        f"line {best[1]} but is not an item; a key of that item starts at column {key}, like "
        f"`{_word(above[key - 1 :])}`, and a new item starts with `- `",
    )


def _too_deep(lines: list[str], row: int) -> tuple[int, int, str] | None:
    """A key indented under the value of the key above it; None when the line is not deeper
    than the one above (then the `:` is inside a plain value)."""
    text = lines[row]
    above = _content(lines, row)
    if not above:
        return None
    i, prev = above[0]
    prev_col = _key_column(prev)
    col = _indent(text) + 1
    if col <= prev_col or ":" not in prev:
        return None
    key = _word(prev[prev_col - 1 :])
    return (
        row + 1,
        col,
        f"bad indentation: `{_word(text)}` at column {col} is deeper than `{key}` on line "
        f"{i + 1} (column {prev_col}), so it reads as more of `{key}`'s value; line it up "
        f"with `{key}`",
    )


def describe(exc: MarkedYAMLError, text: str) -> tuple[int, int, str]:
    """(1-based line, 1-based column, message) for a YAML error in `text`."""
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = exc.problem or exc.context or "cannot be read as YAML"
    lines = text.splitlines()
    row = line - 1
    if "\t" in problem or "'\\t'" in problem:
        return line, col, "bad indentation: a tab character; indent with spaces, not tabs"
    if 0 <= row < len(lines) and problem.startswith("expected <block end>"):
        return _misaligned(lines, row)
    if 0 <= row < len(lines) and problem == "mapping values are not allowed here":
        deep = _too_deep(lines, row)
        if deep is not None:
            return deep
        return line, col, "`: ` inside a value: put the value in quotes"
    return line, col, f"not valid YAML: {problem}"
