"""Reading input files into raw records, each with the line it starts on.

Why a layer of its own: every error a user sees is `FILE:LINE: reason`, so the line number
has to travel with each record from the first byte read; and a line that is not even a JSON
object is a bad record like any other (reported with its line), not a crash that hides the
others. Whole-file problems (missing, unreadable, not UTF-8, a broken CSV header) raise
`SourceError`: there is no line to blame and nothing in the file can be trusted.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["STDIN", "Raw", "SourceError", "parse_csv", "parse_jsonl", "read_source"]

STDIN = "<stdin>"  # the name standard input (`-`) goes by in messages
Format = Literal["jsonl", "csv"]
FORMATS: tuple[str, ...] = ("jsonl", "csv")

#: a CSV cell under `attributes.<key>` that reads as a JSON number becomes that number
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")


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
    source: str, fmt: str | None = None, *, allow_csv: bool = False
) -> tuple[str, list[Raw]]:
    """(the name to report, the raw records) of a path or `-` (standard input).

    The format is `fmt` if given (`jsonl` or `csv`), else CSV for a `.csv` path, else JSON
    Lines. CSV is only offered where `allow_csv` (customers): messages and events carry nested
    objects that a table cannot hold, so a `.csv` given for them is refused whole rather than
    reported as every line being bad JSON.
    """
    if fmt is not None and fmt not in FORMATS:
        raise SourceError(f"unknown format {fmt!r}: use {' or '.join(FORMATS)}")
    is_csv = fmt == "csv" or (fmt is None and source != "-" and source.lower().endswith(".csv"))
    if is_csv and not allow_csv:
        shown = STDIN if source == "-" else source
        raise SourceError(f"{shown}: only customers can be read from CSV; write JSON Lines")
    name, text = _read_text(source)
    return name, (parse_csv(name, text) if is_csv else parse_jsonl(text))


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


# -- CSV (customers) ----------------------------------------------------------------------------


def _attribute_value(cell: str) -> Any:
    """CSV has no types, but rules compare (`customer.seats > 10`): a cell that reads as a JSON
    number, `true` or `false` becomes that value; anything else stays text. A zip code such as
    `02134` is not a JSON number and stays text; to force text, use the `attributes` column."""
    if cell in ("true", "false"):
        return cell == "true"
    if _NUMBER.fullmatch(cell):
        return json.loads(cell)
    return cell


def parse_csv(name: str, text: str) -> list[Raw]:
    """Customers as a table: the header names the same fields as JSON Lines. An `attributes`
    column may hold a JSON object; a column `attributes.<key>` sets that one attribute; an
    empty cell is an absent field. Each record's line is the line its row starts on (a quoted
    cell may span lines)."""
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
        out.append(_row(start, header, cells))
    return out


def _header(name: str, line: int, cells: list[str]) -> list[str]:
    seen: set[str] = set()
    for column in cells:
        if column and column in seen:
            raise SourceError(f"{name}:{line}: column `{column}` appears twice in the header")
        seen.add(column)
    return cells


def _row(line: int, header: list[str], cells: list[str]) -> Raw:
    if len(cells) > len(header):
        return Raw(line, error=f"{len(cells)} cells, but the header names {len(header)} columns")
    record: dict[str, Any] = {}
    from_json: dict[str, Any] = {}
    from_columns: dict[str, Any] = {}
    for position, (column, cell) in enumerate(zip(header, cells, strict=False), start=1):
        if not cell:
            continue
        if not column:
            return Raw(line, error=f"cell {position} ({cell!r}) is under a column with no name")
        if column == "attributes":
            try:
                value = json.loads(cell, object_pairs_hook=_no_duplicates)
            except ValueError:
                value = None
            if not isinstance(value, dict):
                return Raw(
                    line, error='column `attributes` must hold a JSON object, like {"plan": "pro"}'
                )
            from_json = value
        elif column.startswith("attributes."):
            from_columns[column.removeprefix("attributes.")] = _attribute_value(cell)
        else:
            record[column] = cell
    both = sorted(set(from_json) & set(from_columns))
    if both:
        return Raw(
            line,
            error=f"attribute `{both[0]}` is given both in `attributes` and in "
            f"`attributes.{both[0]}`",
        )
    if from_json or from_columns:
        record["attributes"] = {**from_json, **from_columns}
    return Raw(line, fields=record)
