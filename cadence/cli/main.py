"""`cadence`: the command line. Commands parse, call and print; the work is elsewhere.

Heavy imports (SQLAlchemy, the transports) happen inside the commands that need them, so a
command pays only for what it uses. The setup and input commands are here; `commands` and
`report_cmd` add the rest to the same application (`base`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cadence import collector
from cadence.cli.base import (
    ConfigOption,
    app,
    customers_app,
    database_problem,
    db_app,
    errors,
    events_app,
    fail,
    get_app,
    messages_app,
    now_or,
    rules_app,
)
from cadence.cli.base import _main as base_callback
from cadence.words import plural

# -- setup -----------------------------------------------------------------------------------


@app.command(short_help="Write a starter cadence.yaml, rules/, templates/ and samples.")
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
    """Bring the database schema to the newest migration; say from which."""
    from cadence.ledger.db import upgrade_from

    a = get_app()
    with errors():
        before, after = upgrade_from(a.settings.database_url)
    if before == after:
        typer.echo(f"database schema: already at {after}")
    else:
        typer.echo(f"database schema: upgraded {before or 'an empty database'} -> {after}")


@db_app.command("status")
def db_status() -> None:
    """Whether the database schema is the newest; exit 1 when it is not."""
    from cadence.ledger.db import HEAD, schema_state

    a = get_app()
    with errors():
        state = schema_state(a.settings.database_url)
    if state != "current":
        fail(f"database schema: {state}; run `cadence db upgrade`")
    typer.echo(f"database schema: current ({HEAD})")


@db_app.command("current")
def db_current() -> None:
    """The migration the database schema is at."""
    from cadence.ledger.db import HEAD, schema_revision

    a = get_app()
    with errors():
        state, revision = schema_revision(a.settings.database_url)
    if revision is None:
        what = "empty" if state == "empty" else "half made by a first migration that never ended"
        typer.echo(f"none: the database is {what}; run `cadence db upgrade`")
    elif revision == HEAD:
        typer.echo(f"{revision} (head)")
    else:
        typer.echo(f"{revision} (the newest is {HEAD}; run `cadence db upgrade`)")


@db_app.command("history")
def db_history() -> None:
    """Every migration, newest first; * marks the one the database is at."""
    from cadence.ledger.db import migrations, schema_revision

    a = get_app()
    with errors():
        _, current = schema_revision(a.settings.database_url)
        shipped = migrations()
    for m in shipped:
        mark = "*" if m.revision == current else " "
        notes = [n for n, on in (("head", m is shipped[0]), ("current", mark == "*")) if on]
        note = f" ({', '.join(notes)})" if notes else ""
        typer.echo(f"{mark} {m.revision}{note}  {m.title}")
    if current is None:
        typer.echo("the database records no migration; run `cadence db upgrade`")


@db_app.command("downgrade", short_help="Take the schema back to an older migration.")
def db_downgrade(
    revision: Annotated[
        str | None,
        typer.Argument(help="the migration to go back to (see `cadence db history`)"),
    ] = None,
) -> None:
    """Take the schema back to an older migration: what the later ones added is dropped, data
    in it included. For going back to an older cadence; `cadence db upgrade` undoes it."""
    from cadence.ledger.db import RevisionError, downgrade

    if revision is None:
        fail("error: name the migration to go back to, e.g. 0005 (see `cadence db history`)", 2)
    a = get_app()
    with errors():
        try:
            before, after = downgrade(a.settings.database_url, revision)
        except RevisionError as exc:
            fail(f"error: {exc}")
    if before == after:
        typer.echo(f"database schema: already at {after}")
    else:
        typer.echo(f"database schema: downgraded {before} -> {after}")


@rules_app.command("check")
def rules_check(
    directory: Annotated[
        Path | None, typer.Argument(help="rules folder (default: rules_dir)")
    ] = None,
    templates: Annotated[Path | None, typer.Option(help="templates folder")] = None,
    fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """Validate rule files and the templates they name; FILE:LINE:COL for each problem."""
    from cadence.flows.checks import ledger_seen, run_check

    if fmt not in ("text", "json"):
        fail(f"error: --format must be text or json, not {fmt!r}", 2)
    a = get_app()
    folder = directory or Path(a.settings.rules_dir)
    seen = ledger_seen(a.settings.database_url)
    check = run_check(folder, templates or Path(a.settings.templates_dir), seen)
    if fmt == "json":
        import json

        typer.echo(json.dumps(check.as_json(), indent=2))
        raise typer.Exit(1 if check.problems else 0)
    for warning in check.warnings:
        typer.echo(str(warning), err=True)
    if check.problems:
        fail("\n".join(str(e) for e in check.problems))
    typer.echo(check.summary())


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
InputFormatOption = Annotated[
    str | None,
    typer.Option(
        "--input-format", help="the file's format: jsonl or csv (default: csv for a .csv file)"
    ),
]
SummaryFormatOption = Annotated[
    str, typer.Option("--format", help="how to print the summary: text or json")
]


def _summary_format(fmt: str) -> None:
    if fmt in ("jsonl", "csv"):
        fail(
            "error: --format sets how the summary is printed (text or json); "
            f"for the file's format write --input-format {fmt}",
            2,
        )
    if fmt not in ("text", "json"):
        fail(f"error: --format must be text or json, not {fmt!r}", 2)


_DOING = {
    "customers": "importing customers",
    "submit": "submitting messages",
    "record": "recording touches",
    "events": "ingesting events",
}


def _ingest(
    kind: str, source: str, skip_invalid: bool, fmt: str, input_format: str | None = None
) -> None:
    from cadence import ingest
    from cadence.cli.progress_bar import progress_bar
    from cadence.flows.lifecycle import process_events

    _summary_format(fmt)
    a = get_app()
    now = now_or(None)
    with errors(), progress_bar(_DOING[kind], fmt=fmt) as progress:
        store = a.store
        if kind == "events":
            report = ingest.ingest_events(
                store, source, now=now, skip_invalid=skip_invalid, progress=progress
            )
        else:
            read = {
                "customers": ingest.import_customers,
                "submit": ingest.submit_messages,
                "record": ingest.record_messages,
            }[kind]
            # a message naming a missing or broken template is stored, with a warning
            checks = {"templates": a.renderer().check} if kind == "submit" else {}
            report = read(
                store,
                source,
                now=now,
                skip_invalid=skip_invalid,
                fmt=input_format,
                progress=progress,
                **checks,
            )
        created = cancelled = 0
        if kind == "events" and report.written:
            created, cancelled = process_events(store, a.rules(), now)
    name = "<stdin>" if source == "-" else source
    for problem in (*report.errors, *report.warnings):
        typer.echo(str(problem), err=True)
    if fmt == "json":
        import json

        summary = report.as_json(name)
        if kind == "events":
            summary["check_ins"] = {"created": created, "cancelled": cancelled}
        typer.echo(json.dumps(summary, indent=2))
    if report.errors and not report.written:
        fail(f"{name}: rejected, nothing stored ({plural(len(report.errors), 'invalid record')})")
    if fmt == "text":
        line = f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged"
        if kind == "events":
            line += f"; playbooks created {plural(created, 'check-in')} and cancelled {cancelled}"
        typer.echo(line)
    if report.errors:
        raise typer.Exit(1)


@customers_app.command("import")
def customers_import(
    source: SourceArg,
    skip_invalid: SkipOption = False,
    input_format: InputFormatOption = None,
    fmt: SummaryFormatOption = "text",
) -> None:
    """Insert or update customers (JSON Lines or CSV)."""
    _ingest("customers", source, skip_invalid, fmt, input_format)


@messages_app.command("submit")
def messages_submit(
    source: SourceArg,
    skip_invalid: SkipOption = False,
    input_format: InputFormatOption = None,
    fmt: SummaryFormatOption = "text",
) -> None:
    """Messages for cadence to send (JSON Lines or CSV)."""
    _ingest("submit", source, skip_invalid, fmt, input_format)


@messages_app.command(
    "record", short_help="Touches made or planned elsewhere: emails, calls, meetings."
)
def messages_record(
    source: SourceArg,
    skip_invalid: SkipOption = False,
    input_format: InputFormatOption = None,
    fmt: SummaryFormatOption = "text",
) -> None:
    """Touches made or planned elsewhere (emails, calls, meetings, chats; JSON Lines or CSV):
    they count against limits and redundancy."""
    _ingest("record", source, skip_invalid, fmt, input_format)


@messages_app.command("cancel")
def messages_cancel(
    ids: Annotated[list[str], typer.Argument(help="message ids")],
    by: Annotated[str, typer.Option(help="who cancels (shown in the decision)")] = "operator",
) -> None:
    """Withdraw pending messages; their decisions say cancelled, and by whom."""
    a = get_app()
    with errors():
        refused = a.store.ingest.cancel_messages(ids, by, now_or(None))
    for mid, why in refused.items():
        typer.echo(f"{mid}: not cancelled: {why}", err=True)
    typer.echo(f"{plural(len(ids) - len(refused), 'message')} cancelled")
    if refused:
        raise typer.Exit(1)


@events_app.command("ingest")
def events_ingest(
    source: SourceArg, skip_invalid: SkipOption = False, fmt: SummaryFormatOption = "text"
) -> None:
    """Lifecycle events (and unsubscribes, bounces, spam reports)."""
    _ingest("events", source, skip_invalid, fmt)


def _print_version(wanted: bool) -> None:
    if not wanted:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        typer.echo(f"cadence {version('cadence')}")
    except PackageNotFoundError:  # imported from a source tree that was never installed
        from cadence import __version__

        typer.echo(f"cadence {__version__}")
    raise typer.Exit()


VersionOption = Annotated[
    bool,
    typer.Option(
        "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
    ),
]


# base's callback (--config), with --version beside it: a Typer application has one callback
@app.callback()
def _main_and_version(config: ConfigOption = None, version: VersionOption = False) -> None:
    base_callback(config)


def main() -> None:
    from cadence.cli import commands, listing, report_cmd  # noqa: F401 - registers the rest
    from cadence.cli.tidy import tidy

    collector.collect_less()

    try:
        tidy(typer.main.get_command(app))(prog_name="cadence")
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        # a database that fails a command outside `errors()` still gets its one line
        problem = database_problem(exc)
        if problem is None:
            raise
        typer.echo(f"error: {problem}", err=True)
        sys.exit(1)
