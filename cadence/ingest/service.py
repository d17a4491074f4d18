"""The ingestion use cases: read a file, check every record, write all of it or none of it.

Why all or nothing: a file is one act of its sender (a night's export, a campaign). Half of it
landing would leave the ledger in a state nobody chose, and re-sending the fixed file would
then meet its own first half. So by default a file with any invalid record writes nothing
(nothing already stored changes) and every bad record is reported as `FILE:LINE: reason`;
`skip_invalid` writes the valid ones and still reports the rest. Either way the write is one
store call per kind, one transaction.

Why digests: ids are chosen by the sender and resending is normal (retries, overlapping
exports). The same record again is a no-op; the same id with other content is an error that
names both, because silently keeping either one would hide a bug on the sender's side.
Customers are the exception: importing a changed customer updates it (upsert by id).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import ValidationError

from cadence.ingest.readers import MESSAGES, Raw, read_source
from cadence.ingest.record_errors import explain
from cadence.ingest.records import (
    CustomerIn,
    EventIn,
    MessageIn,
    Record,
    RecordedIn,
    expiry_problem,
)
from cadence.model import Customer, Message
from cadence.progress import Progress, quiet

if TYPE_CHECKING:
    from cadence.ledger.ledger import Ledger

__all__ = [
    "IngestReport",
    "InputError",
    "import_customers",
    "ingest_events",
    "record_messages",
    "submit_messages",
]

R = TypeVar("R", bound=Record)

#: records checked between two reports of progress
PROGRESS_EVERY = 256


@dataclass(frozen=True, slots=True)
class InputError:
    """One bad record: where it is and why, in words a person can act on."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class IngestReport:
    """What one file did. `written`: the file was accepted and its valid records are stored
    (True also when all of them were already there). When a file is rejected, `added` and
    `updated` are 0, since nothing was."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[InputError] = field(default_factory=list)
    written: bool = False
    #: what is stored but will not go as it stands (a message naming a template that is
    #: missing or broken: its email is held until the template is fixed)
    warnings: list[InputError] = field(default_factory=list)

    def as_json(self, file: str) -> dict[str, Any]:
        """What `--format json` prints: the counts, whether the file was stored, every bad
        record with its line and reason."""
        return {
            "file": file,
            "stored": self.written,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "invalid": len(self.errors),
            "errors": [{"line": e.line, "reason": e.reason} for e in self.errors],
            "warnings": [{"line": w.line, "reason": w.reason} for w in self.warnings],
        }


@dataclass(frozen=True, slots=True)
class _Item(Generic[R]):
    line: int
    record: R
    digest: str


@dataclass
class _Checked(Generic[R]):
    """A file's records after validation: the first of each id, the errors, the repeats."""

    name: str
    items: list[_Item[R]]
    errors: list[InputError]
    repeats: int  # exact repeats of a record earlier in the same file


def _validate(name: str, raws: list[Raw], model: type[R], progress: Progress) -> _Checked[R]:
    """Every record checked. Progress counts two units a record: one as it is checked here,
    one when the file is written (`_finish`)."""
    checked: _Checked[R] = _Checked(name, [], [], 0)
    first: dict[str, _Item[R]] = {}
    total = 2 * len(raws)
    for n, raw in enumerate(raws):
        if n % PROGRESS_EVERY == 0:
            progress(n, total)
        if raw.fields is None:
            checked.errors.append(InputError(name, raw.line, raw.error or "not a record"))
            continue
        try:
            record = model.model_validate(raw.fields)
        except ValidationError as exc:
            checked.errors.append(InputError(name, raw.line, explain(exc, model)))
            continue
        item = _Item(raw.line, record, record.digest())
        seen = first.get(record.id)
        if seen is None:
            first[record.id] = item
            checked.items.append(item)
        elif seen.digest == item.digest:
            checked.repeats += 1
        else:
            checked.errors.append(
                InputError(
                    name,
                    raw.line,
                    f"id {record.id} already appears at line {seen.line} with different content",
                )
            )
    return checked


def _require_known_customers(store: Ledger, checked: _Checked[R]) -> None:
    """Messages and events name a stored customer: an unknown one is a bad record (most
    likely a typo, or the customers file not imported yet), not a customer to invent."""
    known = store.ingest.customer_digests(sorted({_customer_of(i.record) for i in checked.items}))
    kept = []
    for item in checked.items:
        customer = _customer_of(item.record)
        if customer in known:
            kept.append(item)
        else:
            checked.errors.append(
                InputError(
                    checked.name, item.line, f"unknown customer `{customer}`; import it first"
                )
            )
    checked.items = kept


def _customer_of(record: Record) -> str:
    assert isinstance(record, MessageIn | RecordedIn | EventIn)
    return record.customer


def _new_only(
    checked: _Checked[R], stored: dict[str, str], kind: str
) -> tuple[list[_Item[R]], int]:
    """The records not stored yet, and how many were stored already exactly as they are; a
    stored id with other content is an error naming both."""
    fresh, unchanged = [], 0
    for item in checked.items:
        old = stored.get(item.record.id)
        if old is None:
            fresh.append(item)
        elif old == item.digest:
            unchanged += 1
        else:
            checked.errors.append(
                InputError(
                    checked.name,
                    item.line,
                    f"{kind} {item.record.id} was already stored with different content",
                )
            )
    return fresh, unchanged


def _finish(
    store: Ledger,
    report: IngestReport,
    skip_invalid: bool,
    write: Callable[[], None],
    progress: Progress,
    records: int,
) -> IngestReport:
    report.errors.sort(key=lambda e: e.line)
    progress(records, 2 * records)
    if report.errors and not skip_invalid:
        report.added = report.updated = 0
        report.warnings = []  # nothing was stored, so nothing will be held
        return report
    if report.added or report.updated:
        write()
        # a large load: the database's statistics now, not when autovacuum comes round
        store.ingest.after_bulk_load(report.added + report.updated)
    report.written = True
    progress(2 * records, 2 * records)
    return report


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _check_now(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")


def import_customers(
    store: Ledger,
    source: str,
    *,
    now: datetime,
    skip_invalid: bool = False,
    fmt: str | None = None,
    progress: Progress = quiet,
) -> IngestReport:
    """Upsert customers from JSON Lines or CSV (`fmt`: `jsonl`/`csv`; default by suffix).
    A changed customer is updated, an identical one left alone."""
    _check_now(now)
    name, raws = read_source(source, fmt, allow_csv=True)
    checked = _validate(name, raws, CustomerIn, progress)
    stored = store.ingest.customer_digests([i.record.id for i in checked.items])
    report = IngestReport(errors=checked.errors, unchanged=checked.repeats)
    rows: list[tuple[Customer, str]] = []
    for item in checked.items:
        old = stored.get(item.record.id)
        if old == item.digest:
            report.unchanged += 1
            continue
        rows.append((item.record.to_model(), item.digest))
        if old is None:
            report.added += 1
        else:
            report.updated += 1
    return _finish(
        store,
        report,
        skip_invalid,
        lambda: store.ingest.upsert_customers(rows, now=now),
        progress,
        len(raws),
    )


#: what is wrong with each of these templates (`Renderer.check`); {} when all are fine
TemplateCheck = Callable[[Iterable[str]], Mapping[str, str]]


def _messages(
    store: Ledger,
    source: str,
    model: type[MessageIn] | type[RecordedIn],
    now: datetime,
    skip_invalid: bool,
    fmt: str | None,
    progress: Progress,
    templates: TemplateCheck | None = None,
) -> IngestReport:
    _check_now(now)
    # a CSV row of a message has the JSON Lines fields (from.email, data as JSON, human as
    # true/false), so both forms validate alike and a row repeated as JSON is unchanged
    name, raws = read_source(source, fmt, allow_csv=True, table=MESSAGES)
    checked = _validate(name, raws, model, progress)
    _require_known_customers(store, checked)
    stored = store.ingest.message_digests([i.record.id for i in checked.items])
    done = _touches_done(store, checked, stored) if model is RecordedIn else []
    fresh, unchanged = _new_only(checked, stored, "message")
    rows: list[tuple[Message, str]] = []
    for item in fresh:
        message = item.record.to_model(now)
        # `send_after` defaulted to now: only now can we tell the lifetime is empty
        defaulted = item.record.send_after is None
        if (
            defaulted
            and message.send_after
            and message.expires_at
            and expiry_problem(message.send_after, message.expires_at)
        ):
            checked.errors.append(
                InputError(
                    name,
                    item.line,
                    f"`expires_at` {_iso(message.expires_at)} is already past; with no "
                    f"`send_after` the message would go now, {_iso(message.send_after)}",
                )
            )
            continue
        rows.append((message, item.digest))
    kept = {message.id for message, _ in rows}
    stored_now = [item for item in fresh if item.record.id in kept]
    report = IngestReport(
        added=len(rows),
        updated=len(done),
        unchanged=checked.repeats + unchanged,
        errors=checked.errors,
        warnings=_template_warnings(name, stored_now, templates) if templates else [],
    )
    finished = [(item.record.to_model(now), item.digest) for item in done]

    def write() -> None:
        store.ingest.add_messages(rows, now=now)
        store.ingest.touches_done(finished, now=now)

    return _finish(store, report, skip_invalid, write, progress, len(raws))


def _template_warnings(name: str, items: list[_Item[R]], check: TemplateCheck) -> list[InputError]:
    """A warning for each new message naming a template that is missing or broken."""
    named = [(i.line, t) for i in items if (t := getattr(i.record, "template", None))]
    wrong = check(t for _, t in named)
    return [
        InputError(
            name,
            line,
            f"warning: template `{t}` (its email is held until it is fixed): {wrong[t]}",
        )
        for line, t in named
        if t in wrong
    ]


def _touches_done(store: Ledger, checked: _Checked[R], stored: dict[str, str]) -> list[_Item[R]]:
    """Records that mark a touch planned elsewhere as done: the same record with `sent_at`
    in place of its `planned_at`, the one change an id may take. Taken out of `checked`, so
    they are neither new nor a conflict; the stored digest takes theirs."""
    changed = [
        i for i in checked.items if i.record.id in stored and stored[i.record.id] != i.digest
    ]
    planned = store.ingest.planned_touches([i.record.id for i in changed]) if changed else {}
    done = []
    for item in changed:
        record = item.record
        at = planned.get(record.id)
        if at is None or not isinstance(record, RecordedIn) or record.sent_at is None:
            continue
        if record.as_planned(at).digest() == stored[record.id]:
            done.append(item)
    checked.items = [i for i in checked.items if i not in done]
    return done


def submit_messages(
    store: Ledger,
    source: str,
    *,
    now: datetime,
    skip_invalid: bool = False,
    fmt: str | None = None,
    progress: Progress = quiet,
    templates: TemplateCheck | None = None,
) -> IngestReport:
    """Messages for cadence to send (`messages submit`), from JSON Lines or CSV (`fmt`:
    `jsonl`/`csv`; default by suffix); `send_after` defaults to `now`. With `templates`, a
    message naming a template that is missing or broken is stored with a warning: the
    template may be on its way, and its email is held until it is fixed."""
    return _messages(store, source, MessageIn, now, skip_invalid, fmt, progress, templates)


def record_messages(
    store: Ledger,
    source: str,
    *,
    now: datetime,
    skip_invalid: bool = False,
    fmt: str | None = None,
    progress: Progress = quiet,
) -> IngestReport:
    """Touches other systems or people already made or planned (`messages record`), from
    JSON Lines or CSV (a CRM's export of calls and meetings; `fmt` as for submit): they count
    against limits and redundancy like the emails cadence sends."""
    return _messages(store, source, RecordedIn, now, skip_invalid, fmt, progress)


def ingest_events(
    store: Ledger,
    source: str,
    *,
    now: datetime,
    skip_invalid: bool = False,
    progress: Progress = quiet,
) -> IngestReport:
    """Lifecycle events (`events ingest`). What they mean (reachability, attributes,
    playbooks) is applied by the store and lifecycle passes when their time comes."""
    _check_now(now)
    name, raws = read_source(source)
    checked = _validate(name, raws, EventIn, progress)
    _require_known_customers(store, checked)
    stored = store.ingest.event_digests([i.record.id for i in checked.items])
    fresh, unchanged = _new_only(checked, stored, "event")
    rows = [(item.record.to_model(), item.digest) for item in fresh]
    report = IngestReport(
        added=len(rows), unchanged=checked.repeats + unchanged, errors=checked.errors
    )
    return _finish(
        store,
        report,
        skip_invalid,
        lambda: store.ingest.add_events(rows, now=now),
        progress,
        len(raws),
    )
