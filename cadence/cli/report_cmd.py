"""`cadence report`: what each rule, role and trigger costs the customer."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from cadence.cli.base import app, errors, fail, get_app, now_or, parse_time


def _start(since: str, end: datetime) -> datetime:
    """`--since` as the period's start: a duration back from `end`, or a time of its own
    (as `ledger --since` takes one), which must come before `end`."""
    from cadence.durations import parse_duration

    try:
        return end - parse_duration(since)
    except ValueError as exc:
        if not since[:4].isdigit():  # a time starts with its year; 3x is a duration misspelt
            fail(f"error: --since: {exc}", 2)
    start = parse_time(since, "--since")
    assert start is not None
    if start >= end:
        fail(f"error: --since {since!r} is not before the end of the period, {end.isoformat()}", 2)
    return start


@app.command(short_help="Per role and rule: proposed, sent, held back, and the answers.")
def report(
    since: Annotated[
        str, typer.Option(help="how far back (30d, 12w), or the start (ISO 8601)")
    ] = "30d",
    until: Annotated[
        str | None, typer.Option(help="end of the period (ISO 8601); default now")
    ] = None,
    account: Annotated[str | None, typer.Option(help="only this account's customers")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or html")] = "table",
    out: Annotated[Path | None, typer.Option(help="write to this file instead of printing")] = None,
) -> None:
    """Per role, category, topic, playbook and rule: what was proposed, sent, merged, held back,
    and how customers answered; emails per customer per week; triggers to review."""
    from cadence.cli.progress_bar import progress_bar
    from cadence.report.figures import build, read

    if fmt not in ("table", "json", "html"):
        fail(f"error: --format must be table, json or html, not {fmt!r}", 2)
    end = parse_time(until, "--until") or now_or(None)
    start = _start(since, end)
    a = get_app()
    with errors(), progress_bar("reading the ledger", fmt=fmt) as progress:
        rows = read(a.store, start, end, account, progress)
    figures = build(rows, start, end, a.settings.default_timezone)
    if fmt == "json":
        text = json.dumps(figures, indent=2)
    elif fmt == "html":
        from cadence.report.html import render

        text = render(figures)
    else:
        from cadence.report.table import render_table

        text = render_table(figures)
    if out is not None:
        out.write_text(text)
        typer.echo(f"wrote {out}")
    else:
        typer.echo(text)
