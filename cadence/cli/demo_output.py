"""What `cadence demo` prints: the story of what the engine did, and what to try next."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from cadence.table_fit import fit
from cadence.words import plural

if TYPE_CHECKING:
    from rich.console import Console

    from cadence.app import App
    from cadence.flows.demo import DemoResult


def print_demo(console: Console, app: App, r: DemoResult) -> None:
    from cadence.printing import print_preview

    folder = r.folder
    console.rule("[bold]cadence demo")
    console.print(
        f"In [bold]{folder}[/bold]: cadence.yaml, rules/, templates/ and samples/ from "
        f"`cadence init`, and an embedded SQLite database (cadence.db)."
    )
    imported = ", ".join(f"{n} {k}" for k, n in r.imported.items())
    console.print(f"Imported {imported}.\n")
    if r.preview is not None:
        console.print(
            f"[bold]1. What customer {r.preview.customer_id} would get[/bold], as planned on "
            f"{r.base:%a %d %b %Y} before anything was sent (`cadence preview`):"
        )
        print_preview(console, r.preview, render=False)
    console.print(
        f"\n[bold]2. The engine ran[/bold] from {r.base:%d %b} to {r.end:%d %b} in virtual "
        f"time ({plural(r.passes, 'pass')} of the engine, one at each moment something was due), "
        "sending to the file transport."
    )
    print_outcome(console, r.figures)
    roles = Table(title="Messages asked for vs emails that went out, by role", title_justify="left")
    for col in ("role", "messages submitted", "emails sent (leading role)"):
        roles.add_column(col, justify="right" if col != "role" else "left")
    for role in sorted(set(r.submitted_by_role) | set(r.emails_by_role)):
        roles.add_row(role, str(r.submitted_by_role[role]), str(r.emails_by_role[role]))
    roles.add_row(
        "[bold]all[/bold]",
        f"[bold]{sum(r.submitted_by_role.values())}[/bold]",
        f"[bold]{sum(r.emails_by_role.values())}[/bold]",
    )
    console.print(roles)
    console.print(f"{r.merged_emails} of the emails were digests that merged several messages.")
    if r.by_rule:
        rules = Table(title="What the rules held back", title_justify="left")
        rules.add_column("decision: rule")
        rules.add_column("messages", justify="right")
        for key, n in r.by_rule.most_common():
            rules.add_row(key, str(n))
        console.print(rules)
    if r.checkins:
        from collections import Counter

        counts = Counter((playbook, status) for _, playbook, status in r.checkins)
        checkins = Table(title="Check-ins the playbooks created", title_justify="left")
        for col in ("playbook", "status", "check-ins"):
            checkins.add_column(col, justify="right" if col == "check-ins" else "left")
        for (playbook, status), n in sorted(counts.items()):
            checkins.add_row(playbook, status, str(n))
        console.print(checkins)
    status = ", ".join(f"{n} {s}" for s, n in r.statuses.most_common())
    console.print(f"Every message ended in one status: {status}.")
    console.print(
        f"{plural(r.eml_files, 'email')} {'was' if r.eml_files == 1 else 'were'} written to "
        f"{folder / 'outbox'} as .eml files.\n"
    )
    _print_touches(console, r)
    console.print("[bold]Try next[/bold]")
    cfg = folder / "cadence.yaml"
    for line in (
        f"cadence -c {cfg} preview c-17 --at {r.base:%Y-%m-%dT%H:%MZ} --days 21",
        f"cadence -c {cfg} preview c-17 --at {r.base:%Y-%m-%dT%H:%MZ} --render",
        f"cadence -c {cfg} explain cs-21 (the welcome Lena's onboarding call covers)",
        f"cadence -c {cfg} rules check",
        f"cadence -c {cfg} report --since {(r.end - r.base).days}d --until "
        f"{r.end:%Y-%m-%dT%H:%MZ} (these figures, and every rule's count)",
        f"edit {folder / 'rules' / 'fatigue.yaml'} (say weekly-total max: 2), then preview again",
        f"ls {folder / 'outbox'}",
    ):
        console.print(f"  {line}")


#: how many of the emails a call or meeting held back the story shows, one row each
TOUCH_EXAMPLES = 6


def _print_touches(console: Console, r: DemoResult) -> None:
    """Section 3: the calls and meetings in the ledger, and the emails they held back or made
    redundant, each with the decision that named the call."""
    if not r.touches:
        return
    parts = []
    for channel in sorted({channel for channel, _ in r.touches}):
        done, booked = r.touches[channel, False], r.touches[channel, True]
        part = f"{done + booked} {channel}{'s' if done + booked != 1 else ''}"
        parts.append(f"{part} ({booked} booked ahead)" if booked else part)
    listed = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
    console.print(
        f"[bold]3. Calls and meetings count too.[/bold] The ledger holds {listed}, recorded "
        "from calendars and the CRM. The rules count each one like an email (a booked one at "
        "its time), and a call on a topic can make the automated email on it redundant."
    )
    if not r.held_by_touch:
        console.print("None of them held an email back in these weeks.\n")
        return
    table = Table(
        title=f"{plural(len(r.held_by_touch), 'email')} held back or made redundant by a call "
        "or meeting",
        title_justify="left",
        show_lines=True,
    )
    for col in ("customer", "message", "decision", "in the end", "why (as the engine said it)"):
        table.add_column(col, overflow="fold")
    for held in r.held_by_touch[:TOUCH_EXAMPLES]:
        d = held.decision
        table.add_row(
            held.customer_id,
            held.message_id,
            f"{d.status}: {d.rule}" if d.rule else str(d.status),
            str(held.final),
            escape(d.reason),
        )
    console.print(fit(table, console, ("why (as the engine said it)",)))
    more = len(r.held_by_touch) - TOUCH_EXAMPLES
    if more > 0:
        console.print(f"... and {more} more (`cadence explain MESSAGE` tells each one).")
    console.print()


def print_outcome(console: Console, f: dict[str, Any]) -> None:
    """The before and after of issue 22 in three figures, as `cadence report` computes them
    for the demo's ledger: what sending everything would have put in the inboxes, and what
    the rules did, with what they held back and why."""
    o = f["outcome"]
    without = o["without_rules"]
    console.print(
        f"Sent without rules, each of the {plural(without['emails'], 'message')} the roles "
        "and playbooks asked for would have been an email of its own, the moment its sender "
        f"wanted: {without['p50']:g} a week for the median customer, {without['p95']:g} for "
        f"the busiest 5%. With the rules, {plural(o['emails'], 'email')} went "
        f"({plural(o['digests'], 'digest')} among them): {o['p50']:g} a week for the median "
        f"customer, {o['p95']:g} for the busiest 5%."
    )
    table = Table(title="Before and after, in three figures", title_justify="left")
    for col in ("", "sending everything", "with the rules"):
        table.add_column(col)
    table.add_row("emails", str(without["emails"]), f"{o['emails']} ({o['digests']} digests)")
    table.add_row(
        "emails per customer per week",
        f"p50 {without['p50']:g}, p95 {without['p95']:g}",
        f"p50 {o['p50']:g}, p95 {o['p95']:g}",
    )
    table.add_row(
        "transactional mail on time",
        "no fatigue rule delays it",
        f"{o['on_time']:.1%} of {o['transactional']}",
    )
    table.add_row(
        "distinct content delivered",
        f"all of it, and {o['redundant']} repeats",
        f"{o['delivered']:.1%} of {o['distinct']}",
    )
    console.print(table)
    lost = sorted(o["lost"].items(), key=lambda kv: -sum(kv[1].values()))[:3]
    told = "; ".join(f"{label} {sum(by.values())}" for label, by in lost)
    console.print(
        f"{plural(o['redundant'], 'message')} only repeated what a person had written on the same "
        f"topic, and are left out; {o['pending']} were still on their way when the demo "
        "stopped." + (f" What kept the rest from going: {escape(told)}." if told else "")
    )
    holds = f["holds"]
    if holds:
        said = "; ".join(
            f"{rule} held {n['held']} ({n['sent']} then went, {n['expired']} expired after "
            f"the hold, {n['waiting']} still waiting)"
            for rule, n in holds.items()
        )
        console.print(f"Hold rules made messages wait rather than drop: {escape(said)}.")
    console.print("`cadence report` shows the same figures for any period of a ledger.\n")
