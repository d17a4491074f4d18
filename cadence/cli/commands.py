"""`cadence preview`, `run`, `simulate` and `demo`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cadence.cli.base import app, errors, fail, get_app, now_or, parse_time

FormatOption = Annotated[str, typer.Option("--format", help="table or json")]
RulesOption = Annotated[
    Path | None, typer.Option("--rules", help="a rules folder to use instead of the live rules")
]


def _check_format(fmt: str) -> None:
    if fmt not in ("table", "json"):
        fail(f"error: --format must be table or json, not {fmt!r}", 2)


@app.command(short_help="A customer's upcoming emails and every decision, and why.")
def preview(
    customer: Annotated[str, typer.Argument(help="customer id")],
    days: Annotated[int, typer.Option(help="how far ahead to look")] = 14,
    at: Annotated[str | None, typer.Option(help="as of this time (ISO 8601, with offset)")] = None,
    rules: RulesOption = None,
    fmt: FormatOption = "table",
    render: Annotated[
        bool, typer.Option("--render", help="show each email's final subject and body")
    ] = False,
) -> None:
    """The customer's upcoming emails and every decision on their messages, with the reason."""
    from cadence.flows.preview import UnknownCustomer
    from cadence.flows.preview import preview as make_preview

    _check_format(fmt)
    if days < 1:
        fail(f"error: --days must be 1 or more, not {days}", 2)
    a = get_app()
    as_of = now_or(at, "--at")
    with errors():
        live = a.rules(rules)
        try:
            p = make_preview(a.store, a.settings, live, customer, as_of, days, bodies=render)
        except UnknownCustomer:
            fail(f"error: no customer with id {customer!r}")
    from rich.console import Console

    from cadence.printing import write_preview

    write_preview(Console(), p, fmt=fmt, render=render)


@app.command(short_help="The daemon; with --once, a single pass.")
def run(
    once: Annotated[bool, typer.Option("--once", help="one pass, then exit")] = False,
    now: Annotated[
        str | None, typer.Option(help="the time of the pass (default: the clock)")
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option(help="the daemon's log lines: text or json (default: daemon.log_format)"),
    ] = None,
) -> None:
    """The daemon: sweep playbooks, plan, send what is due. With --once, a single pass."""
    if log_format not in (None, "text", "json"):
        fail(f"error: --log-format must be text or json, not {log_format!r}", 2)
    a = get_app()
    if not once:
        if now is not None:
            fail("error: --now goes with --once; the daemon keeps the clock's time", 2)
        from cadence.runtime.daemon import AlreadyRunning, run_daemon

        with errors():
            try:
                run_daemon(a, log_format)
            except AlreadyRunning as exc:
                fail(f"error: {exc}")
        return
    from cadence.flows.passes import run_pass

    if log_format is not None:  # a pass from cron may want its warnings as JSON too
        from cadence.runtime import logs

        logs.configure(log_format)
    when = now_or(now)
    with errors():
        report = run_pass(a, when)
    typer.echo(report.summary())
    if report.failed:
        raise typer.Exit(1)


@app.command(short_help="Sample customers and messages run through the engine.")
def demo(
    directory: Annotated[Path, typer.Argument(help="a folder of its own for the demo")] = Path(
        "cadence-demo"
    ),
    weeks: Annotated[int, typer.Option(help="how many weeks of virtual time to run")] = 4,
) -> None:
    """Sample customers and every role's messages, run through the engine; what it did."""
    from rich.console import Console

    from cadence.cli.demo_output import print_demo
    from cadence.cli.progress_bar import progress_bar
    from cadence.clock import utcnow
    from cadence.flows.demo import build, next_monday

    console = Console()
    base = next_monday(utcnow())
    with errors(), progress_bar("building the demo", console=console) as shown:
        app, result = build(directory.resolve(), base, weeks, shown.describe, shown)
    try:
        print_demo(console, app, result)
    finally:
        app.close()


@app.command(short_help="The engine over virtual time, sending nothing.")
def simulate(
    start: Annotated[str, typer.Option(help="start of the virtual period (ISO 8601, with offset)")],
    end: Annotated[str, typer.Option(help="end of the virtual period")],
    rules: RulesOption = None,
    replay_history: Annotated[
        bool,
        typer.Option("--replay-history", help="treat recorded past messages as candidates"),
    ] = False,
    fmt: FormatOption = "table",
) -> None:
    """Run the engine over virtual time and send nothing: what the rules would do."""
    from cadence.cli.progress_bar import progress_bar
    from cadence.flows.simulate import simulate as run_simulation

    _check_format(fmt)
    t0, t1 = parse_time(start, "--start"), parse_time(end, "--end")
    assert t0 is not None and t1 is not None
    if t1 <= t0:
        fail("error: --end must be after --start", 2)
    a = get_app()
    with errors(), progress_bar("simulating", fmt=fmt) as progress:
        sim = run_simulation(
            a.store,
            a.settings,
            a.rules(rules),
            t0,
            t1,
            replay_history=replay_history,
            progress=progress,
        )
    from cadence.cli.simulate_output import print_simulation, simulation_json

    if fmt == "json":
        typer.echo(json.dumps(simulation_json(sim), indent=2))
    else:
        from rich.console import Console

        print_simulation(Console(), sim)


emails_app = typer.Typer(help="Emails whose fate needs a person.", no_args_is_help=True)
app.add_typer(emails_app, name="emails")


@emails_app.command(
    "unconfirmed", short_help="Emails that may or may not have gone: never re-sent."
)
def emails_unconfirmed(fmt: FormatOption = "table") -> None:
    """Emails a daemon may or may not have handed over: never re-sent until settled."""
    _check_format(fmt)
    a = get_app()
    with errors():
        rows = a.store.sending.unconfirmed_emails()
    if fmt == "json":
        from cadence.printing import iso

        typer.echo(
            json.dumps(
                [
                    {
                        "id": e.id,
                        "customer": e.customer_id,
                        "send_at": iso(e.send_at),
                        "members": list(e.members),
                        "reason": reason,
                    }
                    for e, reason in rows
                ],
                indent=2,
            )
        )
        return
    if not rows:
        typer.echo("no unconfirmed emails")
    for e, reason in rows:
        typer.echo(
            f"{e.id}  customer {e.customer_id}  messages {','.join(e.members)}  {reason or ''}"
        )


@emails_app.command("settle", short_help="Settle unconfirmed emails as sent or not sent.")
def emails_settle(
    email_ids: Annotated[
        list[str] | None, typer.Argument(help="unconfirmed emails (or --all)", show_default=False)
    ] = None,
    sent: Annotated[
        bool | None,
        typer.Option("--sent/--not-sent", help="did they reach the provider?", show_default=False),
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="every unconfirmed email the filters select")
    ] = False,
    customer: Annotated[str | None, typer.Option(help="with --all: one customer's")] = None,
    since: Annotated[
        str | None, typer.Option(help="with --all: unconfirmed at or after this time (ISO 8601)")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="with --all: unconfirmed before this time (ISO 8601)")
    ] = None,
    by: Annotated[str, typer.Option(help="who settles them (kept in the decisions)")] = "operator",
) -> None:
    """Settle unconfirmed emails: --sent records them as sent; --not-sent plans their messages
    again. Name the emails, or take --all that the filters select. All or nothing: if a named
    email is not unconfirmed, nothing changes."""
    if sent is None:
        fail("error: say --sent or --not-sent", 2)
    if every == bool(email_ids):
        fail("error: name the emails to settle, or give --all (not both)", 2)
    if not every and (customer or since or until):
        fail("error: --customer, --since and --until filter --all", 2)
    lower = parse_time(since, "--since") if since else None
    upper = parse_time(until, "--until") if until else None
    a = get_app()
    with errors():
        waiting = a.store.sending.unconfirmed_emails(customer=customer, since=lower, until=upper)
        ids = [e.id for e, _ in waiting] if every else list(dict.fromkeys(email_ids or []))
        known = {e.id for e, _ in waiting}
        strangers = [i for i in ids if i not in known]
        if strangers:
            fail(
                f"error: not unconfirmed, so nothing was settled: {', '.join(strangers)} "
                "(see `cadence emails unconfirmed`)"
            )
        done = a.store.sending.settle_emails(ids, sent, by, now_or(None))
    what = "sent" if sent else "not sent: its messages are planned again"
    for email_id in done:
        typer.echo(f"{email_id} settled as {what}")
    skipped = [i for i in ids if i not in set(done)]
    for email_id in skipped:  # settled by someone else between the look and the write
        typer.echo(f"{email_id} was settled meanwhile; left as it is")
    typer.echo(f"settled {len(done)} email{'s' if len(done) != 1 else ''}")


@app.command(short_help="A message's decisions over time, and what comes next.")
def explain(
    message_id: Annotated[str, typer.Argument(help="a message id")],
    fmt: FormatOption = "table",
    at: Annotated[str | None, typer.Option(help="as of this time (ISO 8601, with offset)")] = None,
) -> None:
    """A message's decisions over time, each with its rules version, and what changed; for a
    message still open, what the passes will decide next (as `preview` says)."""
    from cadence.flows.preview import explain as explain_message
    from cadence.printing import decision_json, iso

    _check_format(fmt)
    a = get_app()
    as_of = now_or(at, "--at")
    with errors():
        found = explain_message(a.store, a.settings, a.rules(), message_id, as_of)
    if found is None:
        fail(f"error: no message {message_id!r}")
    rows = []
    previous: dict[str, object] | None = None
    for record in found.history:
        item = {"decided_at": iso(record.decided_at), **decision_json(record.decision)}
        if previous is not None:
            item["changed"] = sorted(
                k
                for k in ("status", "send_at", "email", "rule", "reason", "rules_version")
                if item[k] != previous[k]
            )
        rows.append(item)
        previous = item
    upcoming = decision_json(found.upcoming) if found.upcoming is not None else None
    if fmt == "json":
        out = {"message": message_id, "history": rows, "upcoming": upcoming, "as_of": iso(as_of)}
        typer.echo(json.dumps(out, indent=2))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from cadence.table_fit import fit

    table = Table(
        title=f"Decisions on {message_id}, oldest first", title_justify="left", show_lines=True
    )
    for col in ("decided (UTC)", "status\nsend at (UTC)", "rule\nrules", "why", "changed"):
        table.add_column(col, overflow="fold")

    def row(decided: str, r: dict[str, Any], changed: str) -> None:
        table.add_row(
            decided,
            f"{r['status']}\n[dim]{str(r['send_at'] or '')[:16]}[/dim]",
            f"{r['rule'] or ''}\n[dim]{r['rules_version'] or ''}[/dim]",
            escape(str(r["reason"])),
            changed,
        )

    for r in rows:
        row(str(r["decided_at"])[:16], r, ", ".join(r.get("changed", [])))
    if upcoming is not None:
        row(f"next (preview as of {str(iso(as_of))[:16]})", upcoming, "")
    if not rows and upcoming is None:
        table.add_row("", "", "", "not decided yet: no pass has planned it", "")
    console = Console()
    console.print(fit(table, console, ("why",)))
