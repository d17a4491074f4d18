"""`cadence`: the command line. Commands parse, call and print; the work is elsewhere.

Heavy imports (SQLAlchemy, the transports) happen inside the commands that need them, so a
command pays only for what it uses.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from cadence.app import App

app = typer.Typer(
    name="cadence",
    help="One ledger for every role's customer mail: fatigue rules, digests, proactive check-ins.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
rules_app = typer.Typer(help="Rule files.", no_args_is_help=True)
customers_app = typer.Typer(help="Customers.", no_args_is_help=True)
messages_app = typer.Typer(help="Messages of every role.", no_args_is_help=True)
events_app = typer.Typer(help="Lifecycle events.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(rules_app, name="rules")
app.add_typer(customers_app, name="customers")
app.add_typer(messages_app, name="messages")
app.add_typer(events_app, name="events")

_state: dict[str, Path | None] = {"config": None}

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="cadence.yaml to use (else $CADENCE_CONFIG, else ./cadence.yaml)"
    ),
]


@app.callback()
def _main(config: ConfigOption = None) -> None:
    _state["config"] = config


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


@contextmanager
def errors() -> Iterator[None]:
    """Known failures become their message and exit 1 (invalid input or rules)."""
    from cadence.app import NotReady
    from cadence.config import ConfigError
    from cadence.ingest import SourceError
    from cadence.rules import RuleErrors

    try:
        yield
    except RuleErrors as exc:
        fail("\n".join(str(e) for e in exc.errors))
    except (ConfigError, NotReady, SourceError) as exc:
        fail(f"error: {exc}")


def get_app() -> App:
    from cadence.app import open_app

    with errors():
        return open_app(_state["config"])


def parse_time(text: str | None, option: str) -> datetime | None:
    """An ISO 8601 time with an offset; anything else is wrong usage (exit 2)."""
    if text is None:
        return None
    from cadence.clock import NoOffset, parse_instant

    try:
        return parse_instant(text)
    except NoOffset:
        fail(f"error: {option} {text!r} has no UTC offset; write e.g. {text}Z", 2)
    except ValueError:
        fail(f"error: {option} {text!r} is not an ISO 8601 time", 2)


def now_or(text: str | None, option: str = "--now") -> datetime:
    from cadence.clock import utcnow

    return parse_time(text, option) or utcnow()


# -- setup -----------------------------------------------------------------------------------


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="where to write the starter files")] = Path("."),
    force: Annotated[bool, typer.Option(help="overwrite existing files")] = False,
) -> None:
    """Write a working cadence.yaml, rules/, templates/ and sample files to start from."""
    from cadence.clock import utcnow
    from cadence.starter.writer import StarterExists, next_monday, write_starter

    try:
        written = write_starter(directory, next_monday(utcnow()), overwrite=force)
    except StarterExists as exc:
        fail(f"error: {exc}")
    for path in written:
        typer.echo(f"wrote {path}")
    typer.echo(f"\nNext: cd {directory} && cadence customers import samples/customers.jsonl")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema to the newest migration."""
    from cadence.store.db import upgrade

    a = get_app()
    upgrade(a.settings.database_url)
    typer.echo("database schema is up to date")


@rules_app.command("check")
def rules_check(
    directory: Annotated[
        Path | None, typer.Argument(help="rules folder (default: rules_dir)")
    ] = None,
    templates: Annotated[Path | None, typer.Option(help="templates folder")] = None,
) -> None:
    """Validate rule files and the templates they name; FILE:LINE:COL for each problem."""
    from cadence.checks import check_rules

    a = get_app()
    folder = directory or Path(a.settings.rules_dir)
    problems, summary = check_rules(folder, templates or Path(a.settings.templates_dir))
    if problems:
        fail("\n".join(problems))
    typer.echo(summary)


@rules_app.command("schema")
def rules_schema() -> None:
    """Print the JSON Schema of a rule file (for editors)."""
    import json

    from cadence.rules.schema import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


# -- ingestion -------------------------------------------------------------------------------

SourceArg = Annotated[str, typer.Argument(help="a file, or - for standard input")]
SkipOption = Annotated[
    bool, typer.Option("--skip-invalid", help="import the valid records, report the rest")
]


def _ingest(kind: str, source: str, skip_invalid: bool, fmt: str | None = None) -> None:
    from cadence import ingest
    from cadence.lifecycle import process_events

    a = get_app()
    now = now_or(None)
    with errors():
        store = a.store
        if kind == "customers":
            report = ingest.import_customers(
                store, source, now=now, skip_invalid=skip_invalid, fmt=fmt
            )
        elif kind == "submit":
            report = ingest.submit_messages(store, source, now=now, skip_invalid=skip_invalid)
        elif kind == "record":
            report = ingest.record_messages(store, source, now=now, skip_invalid=skip_invalid)
        else:
            report = ingest.ingest_events(store, source, now=now, skip_invalid=skip_invalid)
        created = cancelled = 0
        if kind == "events" and report.written:
            created, cancelled = process_events(store, a.rules(), now)
    for error in report.errors:
        typer.echo(str(error), err=True)
    if report.errors and not report.written:
        name = "<stdin>" if source == "-" else source
        fail(f"{name}: rejected, nothing stored ({len(report.errors)} invalid records)")
    line = f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged"
    if kind == "events":
        line += f"; playbooks created {created} and cancelled {cancelled} check-ins"
    typer.echo(line)
    if report.errors:
        raise typer.Exit(1)


@customers_app.command("import")
def customers_import(
    source: SourceArg,
    skip_invalid: SkipOption = False,
    fmt: Annotated[str | None, typer.Option("--format", help="jsonl or csv")] = None,
) -> None:
    """Insert or update customers (JSON Lines or CSV)."""
    _ingest("customers", source, skip_invalid, fmt)


@messages_app.command("submit")
def messages_submit(source: SourceArg, skip_invalid: SkipOption = False) -> None:
    """Messages for cadence to send."""
    _ingest("submit", source, skip_invalid)


@messages_app.command("record")
def messages_record(source: SourceArg, skip_invalid: SkipOption = False) -> None:
    """Messages already sent elsewhere: they count against limits and redundancy."""
    _ingest("record", source, skip_invalid)


@messages_app.command("cancel")
def messages_cancel(
    ids: Annotated[list[str], typer.Argument(help="message ids")],
    by: Annotated[str, typer.Option(help="who cancels (shown in the decision)")] = "operator",
) -> None:
    """Withdraw pending messages; their decisions say cancelled, and by whom."""
    a = get_app()
    with errors():
        refused = a.store.cancel_messages(ids, by, now_or(None))
    for mid, why in refused.items():
        typer.echo(f"{mid}: not cancelled: {why}", err=True)
    typer.echo(f"{len(ids) - len(refused)} cancelled")
    if refused:
        raise typer.Exit(1)


@events_app.command("ingest")
def events_ingest(source: SourceArg, skip_invalid: SkipOption = False) -> None:
    """Lifecycle events (and unsubscribes, bounces, spam reports)."""
    _ingest("events", source, skip_invalid)


def main() -> None:
    from cadence.cli import commands, report_cmd  # noqa: F401 - registers the other commands

    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
