"""The report as text tables (Rich), for a terminal."""

from __future__ import annotations

from typing import Any

from cadence.report.figures import touch_rows


def render_table(f: dict[str, Any]) -> str:
    from rich.console import Console
    from rich.table import Table

    console = Console(record=True, width=110)
    dist = f["emails_per_customer_week"]
    console.print(
        f"{f['customers']} customers, {f['totals']['messages']} messages, "
        f"{f['totals']['emails']} emails ({f['totals']['digests']} digests), "
        f"{f['since'][:10]} to {f['until'][:10]}"
    )
    t = Table(title="Emails per customer per week", title_justify="left")
    for col in ("", "mean", "p50", "p95", "max"):
        t.add_column(col)
    for label, key in (("before the rules", "before"), ("after the rules", "after")):
        t.add_row(label, *(f"{dist[key][k]:g}" for k in ("mean", "p50", "p95", "max")))
    console.print(t)
    for d in ("role", "rule", "playbook"):
        t = Table(title=f"By {d}", title_justify="left")
        for col in (d, "proposed", "sent", "merged", "suppressed", "expired", "failed"):
            t.add_column(col)
        for key, v in f["by"][d].items():
            t.add_row(
                key,
                *(
                    str(v.get(o, 0))
                    for o in ("proposed", "sent", "merged", "suppressed", "expired", "failed")
                ),
            )
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
