"""The report as text tables (Rich), for a terminal."""

from __future__ import annotations

import io
from typing import Any

from cadence.report.figures import touch_rows

OUTCOMES = ("proposed", "sent", "merged", "suppressed", "expired", "failed")


def headline(f: dict[str, Any]) -> str:
    """The report's first line. Messages and emails are counted apart: several messages
    can go in one digest, so the messages sent (the `sent` column's total) exceed the
    emails."""
    t = f["totals"]
    alerts = t["owner_alerts"]
    return (
        f"{f['customers']} customers, {f['since'][:10]} to {f['until'][:10]}: "
        f"{t['messages']} messages, {t['messages_sent']} of them sent "
        f"in {t['emails']} emails ({t['digests']} digests"
        + (f", {alerts} alert{'s' if alerts != 1 else ''} to account owners" if alerts else "")
        + ")"
    )


def partial_note(f: dict[str, Any]) -> str | None:
    """What to say of a last week shorter than seven days, so it does not read as a drop."""
    p = f.get("partial_week")
    if not p:
        return None
    return (
        f"week {p['week']} is partial ({p['days']:g} of 7 days): its counts are low because "
        "the period ends, not because less mail went, and the p50 and p95 leave it out"
    )


def outcome_lines(f: dict[str, Any]) -> list[str]:
    """The three figures of issue 22 in plain sentences, with what sending everything would
    have been."""
    o = f["outcome"]
    without = o["without_rules"]
    if o["weeks"]:
        weekly = (
            f"Emails per customer per week over {o['weeks']} whole weeks: p50 {o['p50']:g}, "
            f"p95 {o['p95']:g} (sending everything: p50 {without['p50']:g}, "
            f"p95 {without['p95']:g}, {without['emails']} emails to customers instead of "
            f"{o['emails']})"
        )
    else:
        weekly = (
            "Emails per customer per week: the period holds no whole week (--since 7d or "
            f"more); {o['emails']} emails went to customers, {without['emails']} had "
            "everything been sent"
        )
    lines = [
        weekly,
        f"Transactional mail on time (within 5 minutes): {o['on_time']:.1%} of "
        f"{o['transactional']}",
        f"Distinct content delivered: {o['delivered']:.1%} of {o['distinct']} "
        f"({o['redundant']} truly redundant left out: the same topic a person had "
        f"written about; {o['pending']} still on their way)",
    ]
    return lines


def render_table(f: dict[str, Any]) -> str:
    from rich.console import Console
    from rich.table import Table

    # the console writes into a buffer: the caller prints the text once
    console = Console(file=io.StringIO(), record=True, width=110)
    console.print(headline(f))
    console.print("[bold]The outcome[/bold]")
    for line in outcome_lines(f):
        console.print(f"  {line}")
    dist = f["emails_per_customer_week"]
    t = Table(
        title=f"Emails per customer per week ({dist['whole_weeks']} whole weeks)",
        title_justify="left",
    )
    for col in ("", "mean", "p50", "p95", "max"):
        t.add_column(col)
    for label, key in (("before the rules", "before"), ("after the rules", "after")):
        t.add_row(label, *(f"{dist[key][k]:g}" for k in ("mean", "p50", "p95", "max")))
    console.print(t)
    t = Table(title="Mean emails per customer, week by week", title_justify="left")
    t.add_column("")
    partial = f.get("partial_week")
    for i in range(f["weeks"]):
        label = f"week {i + 1}"
        if partial and partial["week"] == i + 1:
            label += " (partial)"
        t.add_column(label, justify="right")
    for label, key in (("before the rules", "before"), ("after the rules", "after")):
        t.add_row(label, *(f"{x:g}" for x in f["weekly_mean"][key]))
    console.print(t)
    note = partial_note(f)
    if note:
        console.print(note)
    for d in ("role", "rule", "playbook"):
        t = Table(title=f"Messages by {d}", title_justify="left")
        for col in (d, *OUTCOMES):
            t.add_column(col)
        for key, v in f["by"][d].items():
            t.add_row(key, *(str(v.get(o, 0)) for o in OUTCOMES))
        if d == "role":
            totals = [sum(v.get(o, 0) for v in f["by"][d].values()) for o in OUTCOMES]
            t.add_row("all", *map(str, totals))
        console.print(t)
    console.print("sent counts messages (merged ones inside their digest), not emails.")
    _holds(console, f)
    lost = f["outcome"]["lost"]
    if lost:
        t = Table(title="Distinct content not delivered, and why", title_justify="left")
        for col in ("status: rule", "messages", "categories"):
            t.add_column(col)
        for label, by in lost.items():
            what = ", ".join(f"{c} {n}" for c, n in by.items())
            t.add_row(label, str(sum(by.values())), what)
        console.print(t)
    t = Table(title="Touches by channel and role", title_justify="left")
    for col in ("channel", "role", "done", "planned, not done"):
        t.add_column(col)
    for channel, role, n in touch_rows(f):
        t.add_row(channel, role, str(n["done"]), str(n["planned"]))
    console.print(t)
    if f["review"]:
        console.print("[bold]Triggers to review[/bold]")
        for r in f["review"]:
            console.print(f"  {r['dimension']} {r['value']}: {r['why']} ({r['emails']} emails)")
    return console.export_text()


def _holds(console: Any, f: dict[str, Any]) -> None:
    from rich.table import Table

    if not f["holds"]:
        console.print("No hold rule made a message wait in the period.")
        return
    t = Table(title="Messages a hold rule made wait, and what became of them", title_justify="left")
    for col in ("hold rule", "held", "sent", "expired after the hold", "still waiting", "other"):
        t.add_column(col)
    for rule, n in f["holds"].items():
        t.add_row(rule, *(str(n[k]) for k in ("held", "sent", "expired", "waiting", "other")))
    console.print(t)
