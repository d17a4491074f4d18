"""The report's figures, computed from the ledger's rows (pure: rows in, a JSON-ready dict out).

Per role, category, topic, playbook and rule: messages proposed, sent, merged, suppressed,
expired, failed; engagement rates where the provider reported them; emails per customer per
week before (every message its own email) and after (what went); issue 22's three figures and
what each hold rule held (`cadence.report.outcome`, which the bench and the demo use too);
sends by local hour and weekday; the triggers to review: rarely opened, or often followed by an
unsubscribe; and every touch that reached the customer, by channel and role.

Calls, meetings and the other touches recorded from elsewhere are not emails: they count
against the rules, but the email figures leave them out, as they leave out whatever another
system has only planned (booked) and not done. `touches` has them all, the planned apart.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from cadence.model import MessageKind, Status
from cadence.progress import Progress, quiet
from cadence.report import outcome

if TYPE_CHECKING:
    from cadence.ledger.ledger import Ledger
    from cadence.ledger.report_reading import ReportRows

DIMENSIONS = ("role", "category", "topic", "playbook", "rule")
OUTCOMES = ("proposed", "sent", "merged", "suppressed", "expired", "failed")
ENGAGEMENT = {
    "opened": "open",
    "clicked": "click",
    "replied": "reply",
    "unsubscribed": "unsubscribe",
    "spam_reported": "complaint",
}
REVIEW_MIN_SENT = 5
REVIEW_OPEN_RATE = 0.10
REVIEW_LEAVE_RATE = 0.02
WEEK = timedelta(days=7)


def is_email(m: dict[str, Any]) -> bool:
    """A message row the email figures count: an email, sent or to send, not one another
    system has only planned."""
    return m.get("channel", "email") == "email" and not m.get("planned")


def touches(rows: ReportRows, since: datetime, until: datetime) -> dict[str, Any]:
    """What reached the customers in the period, by channel and role: emails cadence sent
    (a digest's members each count for their role), what other systems and people recorded
    (calls, meetings, their emails), and apart from those, the touches booked elsewhere for
    the period and not recorded as done. Internal owner alerts reached no customer."""
    by: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for m in rows.messages:
        at = m.get("sent_at")
        if m.get("recipient") or at is None or not since <= at < until:
            continue
        if m["status"] == Status.SENT:
            state = "done"
        elif m["kind"] == MessageKind.RECORDED and m["status"] == Status.RECORDED:
            state = "planned" if m.get("planned") else "done"
        else:
            continue  # never went: suppressed, expired, failed, or a booked call cancelled
        by[m.get("channel", "email")][m["role"]][state] += 1
    table = {
        channel: {
            role: {"done": n["done"], "planned": n["planned"]} for role, n in sorted(roles.items())
        }
        for channel, roles in sorted(by.items())
    }
    return {
        "done": sum(n["done"] for roles in table.values() for n in roles.values()),
        "planned": sum(n["planned"] for roles in table.values() for n in roles.values()),
        "by_channel_role": table,
    }


def touch_rows(f: dict[str, Any]) -> list[tuple[str, str, dict[str, int]]]:
    """The report's touches as rows: channel, role, and the done and planned counts."""
    return [
        (channel, role, n)
        for channel, roles in f["touches"]["by_channel_role"].items()
        for role, n in roles.items()
    ]


def read(
    store: Ledger,
    since: datetime,
    until: datetime,
    account: str | None,
    progress: Progress = quiet,
) -> ReportRows:
    """The ledger's rows for the report of the period, with what people wrote in the span
    before it in which a message on the same topic repeats them."""
    return store.reads.report_rows(
        since, until, account, written_from=since - outcome.REDUNDANT_WITHIN, progress=progress
    )


def build(rows: ReportRows, since: datetime, until: datetime, default_tz: str) -> dict[str, Any]:
    weeks = max(1, math.ceil((until - since) / WEEK))
    multi = {e["id"] for e in rows.emails if len(e["members"]) > 1}
    email_of = {m: e["id"] for e in rows.emails for m in e["members"]}
    mail = [m for m in rows.messages if is_email(m)]
    by_id = {m["id"]: m for m in mail}
    engaged: dict[str, set[str]] = defaultdict(set)
    for ev in rows.engagement:
        engaged[ev["email_id"]].add(ENGAGEMENT[ev["type"]])
    reported = {kind for kinds in engaged.values() for kind in kinds}

    tables: dict[str, dict[str, Counter[str]]] = {d: defaultdict(Counter) for d in DIMENSIONS}
    for m in mail:
        went = _outcome(m, email_of, multi)
        for d in DIMENSIONS:
            key = m.get(d) or "(none)"
            if d == "rule" and not m.get("rule"):
                continue
            tables[d][key]["proposed"] += 1
            if went:
                tables[d][key][went] += 1
            if went == "merged":
                tables[d][key]["sent"] += 1  # a merged message went, inside a digest

    rates: dict[str, dict[str, dict[str, float]]] = {d: {} for d in DIMENSIONS if d != "rule"}
    sent_emails: dict[str, dict[str, set[str]]] = {d: defaultdict(set) for d in rates}
    for e in rows.emails:
        for mid in e["members"]:
            member = by_id.get(mid)
            if member is None:
                continue
            for d in rates:
                sent_emails[d][member.get(d) or "(none)"].add(e["id"])
    for d, groups in sent_emails.items():
        for key, ids in groups.items():
            n = len(ids)
            rates[d][key] = {
                "emails": n,
                **{
                    kind: round(sum(1 for i in ids if kind in engaged.get(i, ())) / n, 4)
                    for kind in ENGAGEMENT.values()
                    if kind in reported
                },
            }

    # emails per customer per week: the shared definition of `cadence.report.outcome`,
    # over the whole weeks for the distribution, with a last partial week for the chart
    mine = [m for m in mail if m["customer_id"] in rows.zones]
    whole_before = outcome.without_rules(mine, outcome.Weeks(since, until, rows.since))
    whole_after = outcome.with_the_rules(mine, rows.emails, outcome.Weeks(since, until, rows.since))
    before = outcome.without_rules(mine, outcome.Weeks(since, until, rows.since, partial=True))
    after = outcome.with_the_rules(
        mine, rows.emails, outcome.Weeks(since, until, rows.since, partial=True)
    )
    heat = [[0] * 24 for _ in range(7)]
    for e in rows.emails:
        if e.get("to_owner"):
            continue
        local = e["sent_at"].astimezone(ZoneInfo(rows.zones.get(e["customer_id"]) or default_tz))
        heat[local.weekday()][local.hour] += 1
    three = outcome.measure(
        rows.messages + rows.written_before, rows.sent, since, until, rows.since
    )
    shown = (until - since) / WEEK
    partial = None
    if shown != int(shown):
        days = round((shown - int(shown)) * 7, 1)
        partial = {"week": weeks, "days": days}

    top = sorted(after.rows.items(), key=lambda kv: (-sum(kv[1]), kv[0]))[:10]
    sent_messages = sum(n.get("sent", 0) for n in tables["role"].values())
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "weeks": weeks,
        # the last week is shorter than seven days: labelled, and left out of the
        # distribution of emails per customer per week
        "partial_week": partial,
        "customers": len(rows.zones),
        "totals": {
            "messages": len(mail),
            "messages_sent": sent_messages,
            "emails": len(rows.emails),
            "digests": len(multi),
            "owner_alerts": sum(1 for e in rows.emails if e.get("to_owner")),
        },
        "by": {d: {k: dict(v) for k, v in sorted(t.items())} for d, t in tables.items()},
        "engagement": rates,
        "engagement_reported": sorted(reported),
        "emails_per_customer_week": {
            "before": whole_before.distribution(),
            "after": whole_after.distribution(),
            "whole_weeks": whole_after.count,
        },
        "weekly_mean": {"before": before.means(), "after": after.means()},
        "outcome": {
            **three.figures(),
            "without_rules": {
                "emails": outcome.everything_count(rows.messages, since, until),
                **{k: whole_before.distribution()[k] for k in ("p50", "p95", "mean")},
            },
        },
        "holds": outcome.holds(rows.messages, rows.held_by),
        # a customer who joined during the period: the weeks before, as none
        "top_customers": [
            {"customer": c, "emails": sum(w), "per_week": [0] * (after.count - len(w)) + w}
            for c, w in top
        ],
        "heatmap_local_weekday_hour": heat,
        "review": _review(rates, reported),
        "touches": touches(rows, since, until),
    }


def _outcome(m: dict[str, Any], email_of: dict[str, str], multi: set[str]) -> str | None:
    status = m["status"]
    if status == Status.SENT:
        return "merged" if email_of.get(m["id"]) in multi else "sent"
    if status in (Status.SUPPRESSED, Status.EXPIRED, Status.FAILED):
        return str(status)
    if status == Status.MERGED:
        return "merged"
    return None


def _review(
    rates: dict[str, dict[str, dict[str, float]]], reported: set[str]
) -> list[dict[str, Any]]:
    """Triggers (playbooks, roles, categories) whose mail is rarely opened or drives people away."""
    flagged = []
    for d in ("playbook", "role", "category"):
        for key, r in rates.get(d, {}).items():
            if key == "(none)" or r["emails"] < REVIEW_MIN_SENT:
                continue
            why = []
            if "open" in reported and r.get("open", 0) < REVIEW_OPEN_RATE:
                why.append(f"opened by {r.get('open', 0):.0%} of recipients")
            leave = r.get("unsubscribe", 0) + r.get("complaint", 0)
            if leave > REVIEW_LEAVE_RATE:
                why.append(f"{leave:.1%} unsubscribed or complained")
            if why:
                flagged.append(
                    {"dimension": d, "value": key, "emails": r["emails"], "why": "; ".join(why)}
                )
    return flagged
