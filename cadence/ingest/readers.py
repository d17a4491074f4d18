"""Reading input files into raw records, each with the line it starts on.

Why a layer of its own: every error a user sees is `FILE:LINE: reason`, so the line number
has to travel with each record from the first byte read; and a line that is not even a JSON
object is a bad record like any other (reported with its line), not a crash that hides the
others. Whole-file problems (missing, unreadable, not UTF-8, a broken CSV header) raise
`SourceError`: there is no line to blame and nothing in the file can be trusted.

CSV is read for customers and for messages (a CRM's daily export of calls and meetings, for
`messages record`): a `Table` says how the cells of each kind become the fields the JSON Lines
form has, so both forms of a record validate alike and have the same digest.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "CUSTOMERS",
    "MESSAGES",
    "STDIN",
    "Raw",
    "SourceError",
    "Table",
    "parse_csv",
    "parse_jsonl",
    "read_source",
]

STDIN = "<stdin>"  # the name standard input (`-`) goes by in messages
Format = Literal["jsonl", "csv"]
FORMATS: tuple[str, ...] = ("jsonl", "csv")

#: a CSV cell under `attributes.<key>` that reads as a JSON number becomes that number
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
#: a cell of an integer column (`priority`) that is a whole number becomes that number
_INTEGER = re.compile(r"-?(?:0|[1-9]\d*)")


class SourceError(Exception):
    """The input as a whole cannot be used: missing, unreadable, not UTF-8, a bad CSV header.
    Its message names the file."""


@dataclass(frozen=True, slots=True)
class Raw:
    """One record as read, before validation: its fields, or why the line is not a record."""

    line: int  # 1-based, the line the record starts on
    fields: dict[str, Any] | None = None
    error: str | None = None


def read_source(
    source: str,
    fmt: str | None = None,
    *,
    allow_csv: bool = False,
    table: Table | None = None,
) -> tuple[str, list[Raw]]:
    """(the name to report, the raw records) of a path or `-` (standard input).

    The format is `fmt` if given (`jsonl` or `csv`), else CSV for a `.csv` path, else JSON
    Lines. CSV is only offered where `allow_csv` (customers, messages), read as `table` says
    (the customers' table if none is given): events carry nested objects that a table cannot
    hold, so a `.csv` given for them is refused whole rather than reported as every line being
    bad JSON.
    """
    if fmt is not None and fmt not in FORMATS:
        raise SourceError(f"unknown format {fmt!r}: use {' or '.join(FORMATS)}")
    is_csv = fmt == "csv" or (fmt is None and source != "-" and source.lower().endswith(".csv"))
    if is_csv and not allow_csv:
        shown = STDIN if source == "-" else source
        raise SourceError(
            f"{shown}: only customers can be read from CSV, and messages; write JSON Lines"
        )
    name, text = _read_text(source)
    return name, (parse_csv(name, text, table or CUSTOMERS) if is_csv else parse_jsonl(text))


def _read_text(source: str) -> tuple[str, str]:
    if source == "-":
        name = STDIN
        stream = sys.stdin
        buffer = getattr(stream, "buffer", None)
        data: bytes | str = buffer.read() if buffer is not None else stream.read()
    else:
        name = source
        path = Path(source)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SourceError(f"{name}: no such file") from None
        except IsADirectoryError:
            raise SourceError(f"{name}: is a folder, not a file") from None
        except OSError as exc:
            raise SourceError(f"{name}: cannot be read: {exc.strerror or exc}") from None
    if isinstance(data, str):
        return name, data.removeprefix("\ufeff")
    try:
        return name, data.decode("utf-8-sig")  # a BOM (spreadsheet exports) is not content
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SourceError(f"{name}:{line}: not UTF-8 text (byte {data[exc.start]:#04x})") from None


# -- JSON Lines ---------------------------------------------------------------------------------


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`json` keeps the last of two equal keys silently; here it is an error, since which one
    the sender meant is a guess."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(f"field `{key}` appears twice")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_jsonl(text: str) -> list[Raw]:
    """One JSON object per line; blank lines skipped. Lines are split on `\\n` only (and a
    trailing `\\r` dropped): `str.splitlines` would also split on U+2028 and friends, which
    JSON allows unescaped inside strings."""
    out: list[Raw] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            value = json.loads(line, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
        except _Duplicate as exc:
            out.append(Raw(number, error=str(exc)))
            continue
        except json.JSONDecodeError as exc:
            out.append(Raw(number, error=f"not JSON: {exc.msg} (column {exc.colno})"))
            continue
        except ValueError as exc:  # NaN, Infinity
            out.append(Raw(number, error=f"not JSON: {exc}"))
            continue
        if not isinstance(value, dict):
            out.append(Raw(number, error=f"a record is a JSON object {{...}}, not {_kind(value)}"))
            continue
        out.append(Raw(number, fields=value))
    return out


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true or false"
    if value is None:
        return "null"
    return "a number"


# -- CSV (customers, messages) -----------------------------------------------------------------


def _attribute_value(cell: str) -> Any:
    """CSV has no types, but rules compare (`customer.seats > 10`): a cell that reads as a JSON
    number, `true` or `false` becomes that value; anything else stays text. A zip code such as
    `02134` is not a JSON number and stays text; to force text, use the `attributes` column."""
    if cell in ("true", "false"):
        return cell == "true"
    if _NUMBER.fullmatch(cell):
        return json.loads(cell)
    return cell


def _text(cell: str) -> str:
    return cell


@dataclass(frozen=True, slots=True)
class Nested:
    """A field that holds an object (`attributes`, `from`, `data`): its column holds the whole
    object as JSON text, and a column `<field>.<key>` sets one key, its cell read by `value`."""

    noun: str  # what one key is called in messages: "attribute `plan` is given both ..."
    example: str  # a JSON object to show when the column holds something else
    value: Callable[[str], Any] = _text


@dataclass(frozen=True, slots=True)
class Table:
    """How the cells of one kind of record become the fields its JSON Lines form has. A cell
    is text unless its column is named here: the models check types strictly, so a `true` in
    a boolean column has to arrive as true, not as the text "true". A cell that does not read
    as its column's type stays text, and validation then names the field and the value."""

    nested: Mapping[str, Nested] = field(default_factory=dict)
    booleans: frozenset[str] = frozenset()
    integers: frozenset[str] = frozenset()


#: customers: `attributes` as JSON, or one column per attribute (`attributes.plan`)
CUSTOMERS = Table(nested={"attributes": Nested("attribute", '{"plan": "pro"}', _attribute_value)})

#: messages to send or already made (a CRM's export of calls and meetings): the sender as
#: `from.email` and `from.name` (or `from` as JSON), template data as `data` (JSON) or
#: `data.<key>` columns typed like attributes, `human` and `transactional` as true or false
MESSAGES = Table(
    nested={
        "from": Nested("sender field", '{"email": "kim@vendor.test", "name": "Kim"}'),
        "data": Nested("data key", '{"plan": "pro"}', _attribute_value),
    },
    booleans=frozenset({"human", "transactional"}),
    integers=frozenset({"priority"}),
)


def parse_csv(name: str, text: str, table: Table = CUSTOMERS) -> list[Raw]:
    """Records as a table: the header names the same fields as JSON Lines, and `table` says
    which cells hold objects, booleans and numbers; an empty cell is an absent field. Each
    record's line is the line its row starts on (a quoted cell may span lines)."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header: list[str] | None = None
    out: list[Raw] = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise SourceError(f"{name}:{reader.line_num}: not CSV: {exc}") from None
        cells = [c.strip() for c in row]
        start = reader.line_num - sum(c.count("\n") for c in row)
        if not any(cells):
            continue  # blank lines, and rows of empty cells that spreadsheets leave
        if header is None:
            header = _header(name, start, cells)
            continue
        out.append(_row(start, header, cells, table))
    return out


def _header(name: str, line: int, cells: list[str]) -> list[str]:
    seen: set[str] = set()
    for column in cells:
        if column and column in seen:
            raise SourceError(f"{name}:{line}: column `{column}` appears twice in the header")
        seen.add(column)
    return cells


def _row(line: int, header: list[str], cells: list[str], table: Table) -> Raw:
    if len(cells) > len(header):
        return Raw(line, error=f"{len(cells)} cells, but the header names {len(header)} columns")
    record: dict[str, Any] = {}
    # per nested field: the object its own column holds, and the keys set by dotted columns
    whole: dict[str, dict[str, Any]] = {}
    keyed: dict[str, dict[str, Any]] = {}
    for position, (column, cell) in enumerate(zip(header, cells, strict=False), start=1):
        if not cell:
            continue
        if not column:
            return Raw(line, error=f"cell {position} ({cell!r}) is under a column with no name")
        parent, dot, key = column.partition(".")
        if column in table.nested:
            try:
                value = json.loads(cell, object_pairs_hook=_no_duplicates)
            except ValueError:
                value = None
            if not isinstance(value, dict):
                example = table.nested[column].example
                return Raw(line, error=f"column `{column}` must hold a JSON object, like {example}")
            whole[column] = value
        elif dot and key and parent in table.nested:
            keyed.setdefault(parent, {})[key] = table.nested[parent].value(cell)
        elif column in table.booleans and cell.lower() in ("true", "false"):
            record[column] = cell.lower() == "true"
        elif column in table.integers and _INTEGER.fullmatch(cell):
            record[column] = int(cell)
        else:
            record[column] = cell
    for parent in table.nested:
        from_json, from_columns = whole.get(parent, {}), keyed.get(parent, {})
        both = sorted(set(from_json) & set(from_columns))
        if both:
            return Raw(
                line,
                error=f"{table.nested[parent].noun} `{both[0]}` is given both in `{parent}` and "
                f"in `{parent}.{both[0]}`",
            )
        if parent in whole or parent in keyed:
            record[parent] = {**from_json, **from_columns}
    return Raw(line, fields=record)
