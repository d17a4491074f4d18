"""Ingestion: read a file, check every record, write all of it or none of it.

By default a file with any invalid record is rejected whole (nothing stored changes) and every
bad record is reported as `FILE:LINE: reason`; `skip_invalid` writes the valid ones and still
reports the rest. The same record twice is a no-op; the same id with other content is an error
that names both.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from cadence.ingest.records import CustomerIn, EventIn, MessageIn, RecordedIn, _Record, explain

if TYPE_CHECKING:
    from cadence.store.gateway import Store

R = TypeVar("R", bound=_Record)


@dataclass(frozen=True, slots=True)
class InputError:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[InputError] = field(default_factory=list)
    written: bool = False


class SourceError(Exception):
    """The file itself cannot be read."""


def _open(source: str) -> tuple[str, str]:
    if source == "-":
        return "<stdin>", sys.stdin.read()
    path = Path(source)
    try:
        return source, path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SourceError(f"{source}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{source}: cannot be read: {exc}") from None


def read_lines(name: str, text: str, fmt: str | None) -> Iterator[tuple[int, Any]]:
    """(line number, raw record) pairs; a line that is not a JSON object yields an error text."""
    if fmt == "csv" or (fmt is None and name.endswith(".csv")):
        reader = csv.DictReader(io.StringIO(text))
        for row in reader:
            record: dict[str, Any] = {}
            attributes: dict[str, Any] = {}
            for key, value in row.items():
                if key is None or value is None or value == "":
                    continue
                if key == "attributes":
                    try:
                        attributes.update(json.loads(value))
                    except ValueError:
                        yield reader.line_num, "column attributes holds no JSON object"
                        break
                elif key.startswith("attributes."):
                    attributes[key.removeprefix("attributes.")] = value
                else:
                    record[key] = value
            else:
                if attributes:
                    record["attributes"] = attributes
                yield reader.line_num, record
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            yield number, f"not JSON: {exc.msg} (column {exc.colno})"
            continue
        if not isinstance(value, dict):
            yield number, "a record is a JSON object ({...})"
            continue
        yield number, value


def _parse(
    source: str, model: type[R], fmt: str | None = None
) -> tuple[str, list[tuple[int, R]], list[InputError]]:
    name, text = _open(source)
    good: list[tuple[int, R]] = []
    errors: list[InputError] = []
    first_line: dict[str, tuple[int, str]] = {}
    for line, raw in read_lines(name, text, fmt):
        if isinstance(raw, str):
            errors.append(InputError(name, line, raw))
            continue
        try:
            record = model.model_validate(raw)
        except ValidationError as exc:
            errors.append(InputError(name, line, explain(exc)))
            continue
        digest = record.digest()
        seen = first_line.get(record.id)
        if seen is not None:
            if seen[1] != digest:
                errors.append(
                    InputError(
                        name,
                        line,
                        f"id {record.id} already appears at line {seen[0]} with different content",
                    )
                )
            continue  # an exact repeat inside the file: nothing to do
        first_line[record.id] = (line, digest)
        good.append((line, record))
    return name, good, errors


def _conflicts(
    name: str, items: list[tuple[int, R]], stored: dict[str, str], kind: str
) -> tuple[list[tuple[int, R]], list[InputError], int]:
    fresh, errors, unchanged = [], [], 0
    for line, record in items:
        old = stored.get(record.id)
        if old is None:
            fresh.append((line, record))
        elif old == record.digest():
            unchanged += 1
        else:
            errors.append(
                InputError(
                    name,
                    line,
                    f"{kind} {record.id} was already stored with different content "
                    "(the same id must always carry the same record)",
                )
            )
    return fresh, errors, unchanged


def _known_customers(
    store: Store, name: str, items: list[tuple[int, R]], ids: Callable[[R], str]
) -> tuple[list[tuple[int, R]], list[InputError]]:
    known = set(store.customers_by_id(sorted({ids(r) for _, r in items})))
    good, errors = [], []
    for line, record in items:
        if ids(record) in known:
            good.append((line, record))
        else:
            errors.append(
                InputError(name, line, f"unknown customer {ids(record)!r}: import it first")
            )
    return good, errors


def _finish(report: IngestReport, skip_invalid: bool, write: Callable[[], None]) -> IngestReport:
    report.errors.sort(key=lambda e: e.line)
    if report.errors and not skip_invalid:
        report.added = report.updated = 0
        return report
    write()
    report.written = True
    return report


def import_customers(
    store: Store, source: str, *, now: datetime, skip_invalid: bool = False, fmt: str | None = None
) -> IngestReport:
    _, items, errors = _parse(source, CustomerIn, fmt)
    stored = store.customer_digests([r.id for _, r in items])
    report = IngestReport(errors=errors)
    changed = []
    for _, record in items:
        old = stored.get(record.id)
        if old == record.digest():
            report.unchanged += 1
            continue
        changed.append((record.to_model(), record.digest()))
        if old is None:
            report.added += 1
        else:
            report.updated += 1
    return _finish(report, skip_invalid, lambda: store.upsert_customers(changed))


def _messages(
    store: Store,
    source: str,
    model: type[MessageIn] | type[RecordedIn],
    now: datetime,
    skip_invalid: bool,
) -> IngestReport:
    name, items, errors = _parse(source, model)
    items, unknown = _known_customers(store, name, items, lambda r: r.customer)
    fresh, conflicts, unchanged = _conflicts(
        name, items, store.message_digests([r.id for _, r in items]), "message"
    )
    report = IngestReport(
        errors=errors + unknown + conflicts, unchanged=unchanged, added=len(fresh)
    )
    rows = [(r.to_model(now), r.digest()) for _, r in fresh]
    return _finish(report, skip_invalid, lambda: store.add_messages(rows))


def submit_messages(
    store: Store, source: str, *, now: datetime, skip_invalid: bool = False
) -> IngestReport:
    return _messages(store, source, MessageIn, now, skip_invalid)


def record_messages(
    store: Store, source: str, *, now: datetime, skip_invalid: bool = False
) -> IngestReport:
    return _messages(store, source, RecordedIn, now, skip_invalid)


def ingest_events(
    store: Store, source: str, *, now: datetime, skip_invalid: bool = False
) -> IngestReport:
    name, items, errors = _parse(source, EventIn)
    items, unknown = _known_customers(store, name, items, lambda r: r.customer)
    fresh, conflicts, unchanged = _conflicts(
        name, items, store.event_digests([r.id for _, r in items]), "event"
    )
    report = IngestReport(
        errors=errors + unknown + conflicts, unchanged=unchanged, added=len(fresh)
    )
    rows = [(r.to_model(), r.digest()) for _, r in fresh]
    return _finish(report, skip_invalid, lambda: store.add_events(rows))
