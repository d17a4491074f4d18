"""`cadence report`: what each rule, role and trigger costs the customer."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from cadence.cli.base import app, errors, fail, get_app, now_or, parse_time


@app.command(short_help="Per role and rule: proposed, sent, held back, and the answers.")
def report(
    since: Annotated[str, typer.Option(help="how far back, e.g. 30d or 12w")] = "30d",
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
    from cadence.durations import parse_duration
    from cadence.report.figures import build, read

    if fmt not in ("table", "json", "html"):
        fail(f"error: --format must be table, json or html, not {fmt!r}", 2)
    try:
        span: timedelta = parse_duration(since)
    except ValueError as exc:
        fail(f"error: --since: {exc}", 2)
    end = parse_time(until, "--until") or now_or(None)
    start = end - span
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
