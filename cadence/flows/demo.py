"""`cadence demo`: a folder of its own, the starter files, the samples, the engine run over a
few weeks of virtual time with the `file` transport, and what happened, told in tables."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cadence.model import Decision, EmailStatus, Message, MessageKind, Status
from cadence.progress import Progress, quiet
from cadence.words import plural

if TYPE_CHECKING:
    from cadence.app import App
    from cadence.flows.passes import PassReport
    from cadence.flows.preview import Preview

DEMO_CUSTOMER = "c-17"


@dataclass(frozen=True)
class HeldByTouch:
    """An email a call or a meeting held back or made redundant, in the engine's words."""

    customer_id: str
    message_id: str
    touch: Message  # the call or meeting its decision names
    decision: Decision  # the last decision that named it
    final: Status  # what became of the message in the end


@dataclass
class DemoResult:
    folder: Path
    base: datetime
    end: datetime
    imported: dict[str, int] = field(default_factory=dict)
    passes: int = 0
    sent: int = 0
    eml_files: int = 0
    preview: Preview | None = None
    statuses: Counter[str] = field(default_factory=Counter)
    by_rule: Counter[str] = field(default_factory=Counter)
    submitted_by_role: Counter[str] = field(default_factory=Counter)
    emails_by_role: Counter[str] = field(default_factory=Counter)
    merged_emails: int = 0
    checkins: list[tuple[str, str, str]] = field(default_factory=list)
    #: what `cadence report` says of the demo's weeks (issue 22's figures among them)
    figures: dict[str, Any] = field(default_factory=dict)
    #: the calls, meetings and other touches recorded, by channel and whether only booked
    touches: Counter[tuple[str, bool]] = field(default_factory=Counter)
    held_by_touch: list[HeldByTouch] = field(default_factory=list)


def build(
    folder: Path,
    base: datetime,
    weeks: int,
    progress: Callable[[str], None],
    advance: Progress = quiet,
) -> tuple[App, DemoResult]:
    """Write and run the demo in `folder` (its database and outbox are made anew). `progress`
    says what it is doing; `advance` how far the passes are through the weeks, in virtual
    seconds."""
    from cadence import ingest
    from cadence.app import App, open_store
    from cadence.config import load_settings
    from cadence.delivery.render import Renderer
    from cadence.flows.lifecycle import process_events
    from cadence.flows.preview import preview
    from cadence.flows.timeline import run_between
    from cadence.starter.writer import write_starter

    folder.mkdir(parents=True, exist_ok=True)
    for stale in ("cadence.db", "cadence.db-wal", "cadence.db-shm"):
        (folder / stale).unlink(missing_ok=True)
    shutil.rmtree(folder / "outbox", ignore_errors=True)
    write_starter(folder, base, overwrite=True)
    settings = load_settings(folder / "cadence.yaml")
    # the demo's ledger is small and read pass after pass: planning keeps what it converted;
    # its templates, written just now, stay as they are for the run: read once, not looked
    # at again before every email
    app = App(
        settings,
        _store=open_store(settings.database_url, memo=True),
        _renderer=Renderer(Path(settings.templates_dir), frozen=True),
    )
    result = DemoResult(folder=folder, base=base, end=base + timedelta(weeks=weeks))
    store = app.store
    samples = folder / "samples"
    progress("importing the samples")
    steps = [
        ("customers", ingest.import_customers, "customers.jsonl"),
        ("recorded", ingest.record_messages, "recorded.jsonl"),
        ("messages", ingest.submit_messages, "messages.jsonl"),
        ("events", ingest.ingest_events, "events.jsonl"),
    ]
    from cadence.starter.crowd import crowd_records

    for kind, records in crowd_records(base).items():
        lines = "\n".join(json.dumps(r) for r in records) + "\n"
        (samples / f"crowd-{kind}.jsonl").write_text(lines)
    steps += [(f"{name} (crowd)", fn, f"crowd-{file}") for name, fn, file in steps]
    for name, fn, file in steps:
        report = fn(store, str(samples / file), now=base)
        if report.errors:
            raise RuntimeError("; ".join(str(e) for e in report.errors))
        result.imported[name] = report.added
    rules = app.rules()
    process_events(store, rules, base)
    result.preview = preview(store, app.settings, rules, DEMO_CUSTOMER, base, 21)
    progress("running the engine over the weeks")
    from cadence.delivery.transports import make_transport

    def told(report: PassReport) -> None:
        result.passes += 1
        result.sent += len(report.dispatch.sent)
        progress(
            f"running the engine: virtual {report.at:%a %d %b %H:%M}, "
            f"{plural(result.sent, 'email')} sent so far"
        )
        advance(int((report.at - base).total_seconds()), span)

    span = int((result.end - base).total_seconds())
    advance(0, span)
    transport = make_transport(app.settings)
    try:
        # the passes the daemon runs, at every moment something is due, as a daemon would
        # have run them had these weeks passed on the wall clock
        run_between(app, base, result.end, transport, told)
    finally:
        transport.close()
    progress("counting what happened")
    _tally(app, result)
    from cadence.report.figures import build as report_figures
    from cadence.report.figures import read

    # the figures `cadence report` shows, for the demo's weeks
    rows = read(store, result.base, result.end, None)
    tz = app.settings.default_timezone
    result.figures = report_figures(rows, result.base, result.end, tz)
    outbox = Path(app.settings.transport.file.dir)
    result.eml_files = len(list(outbox.glob("*.eml"))) if outbox.exists() else 0
    return app, result


def _tally(app: App, result: DemoResult) -> None:
    store = app.store
    for customer_id in store.reads.customer_ids():
        ledger = store.reads.messages_of(customer_id)
        touches = [m for m, _ in ledger if m.kind == MessageKind.RECORDED and m.channel != "email"]
        for message, decision in ledger:
            result.statuses[str(decision.status)] += 1
            if message.channel != "email":
                # a call is not an email: it counts against the rules, not in the mailbox
                result.touches[message.channel, message.planned] += 1
                continue
            if decision.rule and decision.status in ("suppressed", "expired", "deferred", "held"):
                result.by_rule[f"{decision.status}: {decision.rule}"] += 1
            if message.kind == MessageKind.SUBMITTED:
                result.submitted_by_role[message.role] += 1
                held = _held_by_touch(app, message, decision, touches) if touches else None
                if held is not None:
                    result.held_by_touch.append(held)
            if message.playbook:
                result.checkins.append((customer_id, message.playbook, str(decision.status)))
        for email, status in store.reads.emails_of(customer_id):
            if status == EmailStatus.SENT:
                result.emails_by_role[email.role] += 1
                if len(email.members) > 1:
                    result.merged_emails += 1


def _held_by_touch(
    app: App, message: Message, current: Decision, touches: Sequence[Message]
) -> HeldByTouch | None:
    """The last decision on `message` that names one of its customer's calls or meetings
    (as a limit's count, or as what made it redundant), or None. Decisions name a touch as
    `touch_label` words it, planned or done: read from the ledger's history, since a deferral
    that has run its course is followed by the decision the email went out under."""
    from cadence.engine.explain import touch_label

    history = [r.decision for r in app.store.reads.decision_history(message.id)]
    for decision in reversed([*history, current]):
        for touch in touches:
            labels = (touch_label(touch), touch_label(replace(touch, planned=not touch.planned)))
            if touch.id in decision.counted or any(label in decision.reason for label in labels):
                return HeldByTouch(message.customer_id, message.id, touch, decision, current.status)
    return None


def next_monday(t: datetime) -> datetime:
    from cadence.starter.writer import next_monday as nm

    return nm(t)
