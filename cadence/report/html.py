"""The report as one self-contained HTML file: charts drawn by matplotlib as inline SVG (no
scripts, no fonts or images to fetch), and the figures as tables a CSM reads at a glance."""

from __future__ import annotations

import html
import io
from typing import Any

from cadence.report.figures import touch_rows
from cadence.report.table import OUTCOMES, headline, outcome_lines, partial_note

DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
STYLE = """body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;max-width:1000px;
margin:2rem auto;padding:0 1rem;color:#1f2328}h1{font-size:1.6rem}h2{font-size:1.15rem;
margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.3rem}table{border-collapse:
collapse;font-size:.9rem;margin:.5rem 0}td,th{border:1px solid #d0d7de;padding:.25rem .6rem;
text-align:right}td:first-child,th:first-child{text-align:left}.flag{color:#b42318}
figure{margin:1rem 0}figcaption{color:#57606a;font-size:.85rem}"""


def _svg(fig: Any) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def charts(f: dict[str, Any]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "path", "font.size": 9})
    out: dict[str, str] = {}
    partial = f.get("partial_week")
    weeks = [
        f"week {i + 1}" + (" (partial)" if partial and partial["week"] == i + 1 else "")
        for i in range(f["weeks"])
    ]
    fig, ax = plt.subplots(figsize=(7, 2.8))
    # a partial last week is drawn apart, dashed and hollow, so it does not read as a drop
    whole = len(weeks) - 1 if partial else len(weeks)
    for key, label, color in (
        ("before", "before: every role on its own", "C0"),
        ("after", "after: with the rules", "C1"),
    ):
        values = f["weekly_mean"][key]
        ax.plot(weeks[:whole], values[:whole], marker="o", color=color, label=label)
        if partial and whole:
            ax.plot(weeks[whole - 1 :], values[whole - 1 :], linestyle="--", color=color)
        if partial:
            ax.plot(weeks[-1:], values[-1:], marker="o", markerfacecolor="white", color=color)
    ax.set_ylabel("emails per customer")
    ax.legend(frameon=False)
    out["weekly"] = _svg(fig)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 2.6))
    image = ax.imshow(f["heatmap_local_weekday_hour"], aspect="auto", cmap="Blues")
    ax.set_yticks(range(7), DAYS)
    ax.set_xticks(range(0, 24, 2), [f"{h:02d}" for h in range(0, 24, 2)])
    ax.set_xlabel("local hour of the customer")
    fig.colorbar(image, ax=ax, label="emails")
    out["heatmap"] = _svg(fig)
    plt.close(fig)
    rules = {k: v for k, v in f["by"]["rule"].items()}
    names = sorted(rules, key=lambda k: rules[k].get("proposed", 0))[-15:]
    fig, ax = plt.subplots(figsize=(7, 0.35 * max(3, len(names)) + 0.6))
    ax.barh(names, [rules[n].get("proposed", 0) for n in names], color="#2f6feb")
    ax.set_xlabel("messages decided by the rule")
    out["rules"] = _svg(fig)
    plt.close(fig)
    return out


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render(f: dict[str, Any]) -> str:
    c = charts(f)
    dist = f["emails_per_customer_week"]
    note = partial_note(f)
    parts = [
        f"<h1>cadence report: {html.escape(f['since'][:10])} to "
        f"{html.escape(f['until'][:10])}</h1>",
        f'<p id="headline">{html.escape(headline(f))}.</p>',
        "<h2>The outcome</h2>",
        '<ul id="outcome">'
        + "".join(f"<li>{html.escape(line)}</li>" for line in outcome_lines(f))
        + "</ul>",
        f"<h2>Emails per customer per week ({dist['whole_weeks']} whole weeks)</h2>",
        _table(
            ["", "mean", "p50", "p95", "max"],
            [
                [label, *(dist[key][k] for k in ("mean", "p50", "p95", "max"))]
                for label, key in (("before the rules", "before"), ("after the rules", "after"))
            ],
        ),
        f'<figure class="chart" id="weekly">{c["weekly"]}<figcaption>Mean emails per customer, '
        "week by week, before and after the rules"
        + (f'. <span id="partial-week">{html.escape(note.capitalize())}.</span>' if note else "")
        + "</figcaption></figure>",
        "<h2>Hold rules</h2>",
        _table(
            ["hold rule", "held", "sent", "expired after the hold", "still waiting", "other"],
            [
                [rule, *(n[k] for k in ("held", "sent", "expired", "waiting", "other"))]
                for rule, n in f["holds"].items()
            ],
        )
        if f["holds"]
        else "<p>No hold rule made a message wait in the period.</p>",
        "<h2>Distinct content not delivered, and why</h2>",
        _table(
            ["status: rule", "messages", "categories"],
            [
                [label, sum(by.values()), ", ".join(f"{k} {n}" for k, n in by.items())]
                for label, by in f["outcome"]["lost"].items()
            ],
        ),
        "<h2>Triggers to review</h2>",
        "<ul>"
        + "".join(
            f'<li class="flag">{html.escape(r["dimension"])} <b>{html.escape(r["value"])}</b>: '
            f"{html.escape(r['why'])} ({r['emails']} emails)</li>"
            for r in f["review"]
        )
        + "</ul>"
        if f["review"]
        else "<p>No trigger stands out.</p>",
        f'<figure class="chart" id="heatmap">{c["heatmap"]}<figcaption>Emails sent, by weekday and '
        "local hour</figcaption></figure>",
        f'<figure class="chart" id="rules">{c["rules"]}<figcaption>Messages decided by each rule'
        "</figcaption></figure>",
    ]
    for d in ("role", "category", "playbook", "rule", "topic"):
        rows = [
            [
                k,
                *(v.get(o, 0) for o in OUTCOMES),
            ]
            for k, v in f["by"][d].items()
        ]
        parts += [
            f"<h2>By {d}</h2>",
            _table([d, *OUTCOMES], rows),
        ]
        if d == "role":
            parts.append(
                "<p>sent counts messages (merged ones inside their digest), not emails: "
                f"{f['totals']['messages_sent']} messages went in {f['totals']['emails']} "
                "emails.</p>"
            )
        if d in f["engagement"] and f["engagement_reported"]:
            kinds = f["engagement_reported"]
            parts.append(
                _table(
                    [d, "emails", *kinds],
                    [
                        [k, v["emails"], *(f"{v.get(x, 0):.0%}" for x in kinds)]
                        for k, v in f["engagement"][d].items()
                    ],
                )
            )
    touched = f["touches"]
    parts += [
        "<h2>Touches by channel and role</h2>",
        f"<p>{touched['done']} touches reached customers: emails, and the calls, meetings and "
        f"other touches recorded from elsewhere; {touched['planned']} more were booked "
        "elsewhere for the period and not recorded as done.</p>",
        _table(
            ["channel", "role", "done", "planned, not done"],
            [[channel, role, n["done"], n["planned"]] for channel, role, n in touch_rows(f)],
        ),
    ]
    parts += [
        "<h2>Customers who got the most</h2>",
        _table(
            ["customer", "emails", "per week"],
            [
                [t["customer"], t["emails"], " ".join(map(str, t["per_week"]))]
                for t in f["top_customers"]
            ],
        ),
    ]
    body = "\n".join(parts)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>cadence report'
        f"</title><style>{STYLE}</style></head><body>{body}</body></html>\n"
    )
