"""What `cadence simulate` prints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table

from cadence.printing import decision_json, email_json
from cadence.words import plural

if TYPE_CHECKING:
    from rich.console import Console

    from cadence.flows.simulate import Simulation


def simulation_json(sim: Simulation) -> dict[str, Any]:
    """The contract's JSON: the emails sent, in order, and every message's decision, each
    with its customer; local times in the customer's own zone."""
    emails = [
        {
            "customer": e.email.customer_id,
            **email_json(e.email, e.timezone, {"subject": e.subject}),
        }
        for e in sim.emails
    ]
    decisions = [
        {"customer": message.customer_id, **decision_json(d)} for message, d in sim.decisions
    ]
    return {"emails": emails, "decisions": decisions, "stats": sim.stats()}


def print_simulation(console: Console, sim: Simulation) -> None:
    stats = sim.stats()
    console.print(
        f"Simulated {plural(stats['customers'], 'customer')} from {sim.start:%Y-%m-%d %H:%M} to "
        f"{sim.end:%Y-%m-%d %H:%M} UTC ({plural(stats['weeks'], 'week')}, "
        f"{plural(stats['passes'], 'pass')} of "
        "the engine on a copy of the ledger); nothing was sent or stored."
    )
    dist = stats["emails_per_customer_week"]
    table = Table(title="Emails per customer per week", title_justify="left")
    table.add_column("")
    for col in ("mean", "p50", "p95", "max"):
        table.add_column(col, justify="right")
    table.add_row(
        "before (every role on its own)",
        *(f"{dist['before'][k]:g}" for k in ("mean", "p50", "p95", "max")),
    )
    table.add_row(
        "after (with the rules)", *(f"{dist['after'][k]:g}" for k in ("mean", "p50", "p95", "max"))
    )
    console.print(table)
    digests = stats["merged_emails"]
    console.print(
        f"{plural(stats['messages'], 'message')} became {plural(stats['emails'], 'email')} "
        f"({stats['merged_emails']} of them {'a digest' if digests == 1 else 'digests'})."
    )
    for title, key in (("Decisions by status", "by_status"), ("Decisions by rule", "by_rule")):
        t = Table(title=title, title_justify="left")
        t.add_column(title.split()[-1])
        t.add_column("messages", justify="right")
        for k, n in stats[key].items():
            t.add_row(k, str(n))
        console.print(t)
    roles = Table(title="By role", title_justify="left")
    for col in ("role", "messages", "emails (leading role)"):
        roles.add_column(col)
    for role in sorted(set(stats["messages_by_role"]) | set(stats["emails_by_role"])):
        roles.add_row(
            role,
            str(stats["messages_by_role"].get(role, 0)),
            str(stats["emails_by_role"].get(role, 0)),
        )
    console.print(roles)
