"""`cadence ledger` and `cadence upcoming`: what the ledger holds, listed, as a table, JSON or
CSV. The queries are the ledger's (`cadence.ledger.listing`), the output `cadence.printing`'s."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from cadence.cli.base import app, errors, fail, get_app, now_or, parse_time

if TYPE_CHECKING:
    from cadence.model import Status

FormatOption = Annotated[str, typer.Option("--format", help="table, json or csv")]
RoleOption = Annotated[str | None, typer.Option(help="only this role's")]
CategoryOption = Annotated[str | None, typer.Option(help="only this category's")]


def _check_format(fmt: str) -> None:
    if fmt not in ("table", "json", "csv"):
        fail(f"error: --format must be table, json or csv, not {fmt!r}", 2)


def _status(text: str | None) -> Status | None:
    from cadence.model import Status

    if text is None:
        return None
    try:
        return Status(text)
    except ValueError:
        known = ", ".join(s.value for s in Status)
        fail(f"error: --status {text!r} is not a status; one of {known}", 2)


@app.command("ledger")
def ledger_list(
    customer: Annotated[str | None, typer.Option(help="only this customer's")] = None,
    account: Annotated[str | None, typer.Option(help="only this account's customers'")] = None,
    role: RoleOption = None,
    category: CategoryOption = None,
    channel: Annotated[
        str | None, typer.Option(help="only this channel's: email, call, meeting, ...")
    ] = None,
    status: Annotated[
        str | None, typer.Option(help="only this status: sent, scheduled, suppressed, ...")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="at or after this time (ISO 8601, with offset)")
    ] = None,
    until: Annotated[str | None, typer.Option(help="before this time (ISO 8601)")] = None,
    limit: Annotated[int, typer.Option(help="at most this many; 0 for all")] = 200,
    fmt: FormatOption = "table",
) -> None:
    """Every message in the ledger that matches, newest first.

    Each with its status, its time (sent, planned or decided), its email, rule and reason."""
    from cadence.ledger.listing import LedgerFilter

    _check_format(fmt)
    if limit < 0:
        fail(f"error: --limit must be 0 (all) or more, not {limit}", 2)
    wanted = LedgerFilter(
        customer=customer,
        account=account,
        role=role,
        category=category,
        channel=channel,
        status=_status(status),
        since=parse_time(since, "--since"),
        until=parse_time(until, "--until"),
        limit=limit,
    )
    a = get_app()
    with errors():
        entries = a.store.listing.entries(wanted)
    from cadence.printing import LEDGER_COLUMNS, ledger_json, print_ledger, write_records

    if fmt == "table":
        from rich.console import Console

        print_ledger(Console(), entries, limit)
    else:
        write_records(sys.stdout, [ledger_json(e) for e in entries], LEDGER_COLUMNS, fmt)


@app.command(short_help="Every customer's planned emails, soonest first.")
def upcoming(
    days: Annotated[int, typer.Option(help="how far ahead to look")] = 7,
    role: RoleOption = None,
    category: CategoryOption = None,
    at: Annotated[str | None, typer.Option(help="from this time (ISO 8601, with offset)")] = None,
    fmt: FormatOption = "table",
) -> None:
    """Every customer's planned emails from now (or --at) for --days, soonest first."""
    _check_format(fmt)
    if days < 1:
        fail(f"error: --days must be 1 or more, not {days}", 2)
    start = now_or(at, "--at")
    end = start + timedelta(days=days)
    a = get_app()
    with errors():
        planned = a.store.listing.planned_emails(start, end, role=role, category=category)
    from cadence.printing import UPCOMING_COLUMNS, planned_json, print_planned, write_records

    zone = a.settings.default_timezone
    if fmt == "table":
        from rich.console import Console

        print_planned(Console(), planned, zone, start, end)
    else:
        write_records(sys.stdout, [planned_json(p, zone) for p in planned], UPCOMING_COLUMNS, fmt)
