"""Readers: every raw record carries the line it starts on; whole-file problems name the file."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from cadence.ingest.readers import STDIN, Raw, SourceError, parse_csv, parse_jsonl, read_source


def test_jsonl_numbers_lines_from_one_and_skips_blank_ones() -> None:
    raws = parse_jsonl('{"id": "a"}\n\n   \n{"id": "b"}\r\n{"id": "c"}')
    assert [(r.line, r.fields) for r in raws] == [
        (1, {"id": "a"}),
        (4, {"id": "b"}),
        (5, {"id": "c"}),
    ]


def test_a_line_that_is_not_a_record_is_an_error_for_that_line() -> None:
    raws = parse_jsonl(
        '{"id": "a"}\n{not json\n[1, 2]\n"text"\n{"id": NaN}\n{"id": "a", "id": "b"}\n'
    )
    errors = {r.line: r.error for r in raws if r.error}
    assert errors[2] == "not JSON: Expecting property name enclosed in double quotes (column 2)"
    assert errors[3] == "a record is a JSON object {...}, not a list"
    assert errors[4] == "a record is a JSON object {...}, not a string"
    assert errors[5] == "not JSON: NaN is not a JSON number"
    assert errors[6] == "field `id` appears twice"
    assert raws[0] == Raw(1, {"id": "a"})


def test_json_strings_may_hold_line_separators() -> None:
    """U+2028 is legal unescaped inside JSON strings; `splitlines` would cut the record."""
    raws = parse_jsonl('{"id": "a", "name": "x\u2028y"}\n{"id": "b"}\n')
    assert [r.line for r in raws] == [1, 2] and raws[0].fields == {"id": "a", "name": "x\u2028y"}


def test_csv_columns_attributes_and_empty_cells() -> None:
    text = (
        "id,email,name,timezone,attributes.plan,attributes.seats,attributes.zip,attributes\n"
        'c-1,a@acme.test,A,,pro,12,02134,"{""signup_at"": ""2026-10-01T09:00:00Z""}"\n'
        "c-2,b@acme.test,B,UTC,,,,\n"
    )
    raws = parse_csv("c.csv", text)
    assert raws[0] == Raw(
        2,
        {
            "id": "c-1",
            "email": "a@acme.test",
            "name": "A",
            "attributes": {
                "plan": "pro",
                "seats": 12,
                "zip": "02134",
                "signup_at": "2026-10-01T09:00:00Z",
            },
        },
    )
    assert raws[1] == Raw(3, {"id": "c-2", "email": "b@acme.test", "name": "B", "timezone": "UTC"})


def test_csv_attribute_cells_that_read_as_json_scalars_get_their_type() -> None:
    raws = parse_csv(
        "c.csv", "id,attributes.a,attributes.b,attributes.c,attributes.d\nx,true,-1.5,1e3,+1\n"
    )
    assert raws[0].fields == {
        "id": "x",
        "attributes": {"a": True, "b": -1.5, "c": 1000.0, "d": "+1"},
    }


def test_csv_lines_are_where_rows_start() -> None:
    text = 'id,name\n\nc-1,"two\nlines"\nc-2,x,extra\n,\nc-3,"{"\n'
    raws = parse_csv("c.csv", text)
    assert [r.line for r in raws] == [3, 5, 7]
    assert raws[0].fields == {"id": "c-1", "name": "two\nlines"}
    assert raws[1].error == "3 cells, but the header names 2 columns"


def test_csv_row_errors() -> None:
    raws = parse_csv(
        "c.csv",
        'id,attributes,attributes.plan,\nc-1,[1],,\nc-2,"{""plan"": ""a""}",b,\nc-3,,,stray\n',
    )
    errors = [(r.line, r.error) for r in raws]
    assert errors == [
        (2, 'column `attributes` must hold a JSON object, like {"plan": "pro"}'),
        (3, "attribute `plan` is given both in `attributes` and in `attributes.plan`"),
        (4, "cell 4 ('stray') is under a column with no name"),
    ]


def test_csv_header_with_a_column_twice_rejects_the_file() -> None:
    with pytest.raises(SourceError, match=r"^c\.csv:1: column `email` appears twice"):
        parse_csv("c.csv", "id,email,email\nc-1,a@x.test,b@x.test\n")


def test_read_source_picks_csv_by_suffix_or_format(tmp_path: Path) -> None:
    path = tmp_path / "people.CSV"
    path.write_bytes("\ufeffid,name\nc-1,Ana\n".encode())  # a BOM, as spreadsheets write
    name, raws = read_source(str(path), allow_csv=True)
    assert name == str(path) and raws == [Raw(2, {"id": "c-1", "name": "Ana"})]
    other = tmp_path / "people.txt"
    other.write_text("id,name\nc-1,Ana\n")
    assert read_source(str(other), "csv", allow_csv=True)[1] == raws
    assert read_source(str(other), "jsonl")[1][0].error is not None
    with pytest.raises(SourceError, match="only customers can be read from CSV"):
        read_source(str(path))
    with pytest.raises(SourceError, match="unknown format 'xml'"):
        read_source(str(path), "xml", allow_csv=True)


def test_stdin_is_named_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.TextIOWrapper(io.BytesIO(b'\n{"id": "a"}\n{oops\n'), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", stream)
    name, raws = read_source("-")
    assert name == STDIN == "<stdin>"
    assert [(r.line, r.error is None) for r in raws] == [(2, True), (3, False)]


def test_stdin_without_a_byte_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"id": "a"}\n'))
    assert read_source("-")[1] == [Raw(1, {"id": "a"})]


def test_files_that_cannot_be_read_are_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(SourceError, match=f"^{missing}: no such file$"):
        read_source(str(missing))
    with pytest.raises(SourceError, match=f"^{tmp_path}: is a folder"):
        read_source(str(tmp_path))
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"id": "a"}\n{"name": "Jos\xe9"}\n')
    with pytest.raises(SourceError, match=rf"^{latin}:2: not UTF-8 text \(byte 0xe9\)"):
        read_source(str(latin))
