"""`cadence simulate`: the daemon's own passes over virtual time, on a scratch copy of the
ledger, sending and storing nothing.

"Before" is what customers get with no cadence at all: every message goes on its own when
its role wanted it (and what other systems sent). "After" is what the passes send under the
rules. With `replay_history`, messages recorded from other systems inside the period become
candidates too, to show what a rule change would have done to last month's mail.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cadence.model import Decision, Email, Message, MessageKind, Status
from cadence.progress import Progress, quiet

if TYPE_CHECKING:
    from cadence.config import Settings
    from cadence.ledger.ledger import Ledger
    from cadence.rules.model import Rules

WEEK = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class SimulatedEmail:
    email: Email
    subject: str | None
    timezone: str  # the customer's, for local times


@dataclass
class Simulation:
    start: datetime
    end: datetime
    passes: int = 0
    emails: list[SimulatedEmail] = field(default_factory=list)  # in the order sent
    # every message the run decided, with its customer and what became of it
    decisions: list[tuple[Message, Decision]] = field(default_factory=list)
    before: dict[str, list[int]] = field(default_factory=dict)  # customer -> emails per week
    after: dict[str, list[int]] = field(default_factory=dict)

    def stats(self) -> dict[str, Any]:
        statuses: Counter[str] = Counter()
        by_rule: Counter[str] = Counter()
        roles_in: Counter[str] = Counter()
        roles_out: Counter[str] = Counter()
        for message, d in self.decisions:
            statuses[str(d.status)] += 1
            if d.rule:
                by_rule[f"{d.status}: {d.rule}"] += 1
            roles_in[message.role] += 1
        for e in self.emails:
            roles_out[e.email.role] += 1
        return {
            "customers": len(self.after),
            "weeks": self.weeks,
            "passes": self.passes,
            "emails_per_customer_week": {
                "before": distribution(self.before.values()),
                "after": distribution(self.after.values()),
            },
            "messages": sum(statuses.values()),
            "emails": sum(roles_out.values()),
            "merged_emails": sum(len(e.email.members) > 1 for e in self.emails),
            "by_status": dict(statuses.most_common()),
            "by_rule": dict(by_rule.most_common()),
            "messages_by_role": dict(roles_in.most_common()),
            "emails_by_role": dict(roles_out.most_common()),
        }

    @property
    def weeks(self) -> int:
        return max(1, math.ceil((self.end - self.start) / WEEK))

    def week_of(self, t: datetime | None) -> int | None:
        if t is None or not self.start <= t < self.end:
            return None
        return int((t - self.start) // WEEK)


def distribution(rows: Iterable[list[int]]) -> dict[str, float]:
    cells = sorted(n for row in rows for n in row)
    if not cells:
        return {"mean": 0.0, "p50": 0.0, "p95": 0.0, "max": 0.0}

    def pct(q: float) -> float:
        return float(cells[min(len(cells) - 1, math.ceil(q * len(cells)) - 1)])

    return {
        "mean": round(sum(cells) / len(cells), 2),
        "p50": pct(0.5),
        "p95": pct(0.95),
        "max": float(cells[-1]),
    }


def simulate(
    store: Ledger,
    settings: Settings,
    rules: Rules,
    start: datetime,
    end: datetime,
    *,
    replay_history: bool = False,
    parts: int | None = None,
    progress: Progress = quiet,
) -> Simulation:
    """Run the passes from `start` to `end` on a scratch copy of the whole ledger: split by
    account over `parts` processes (one per core by default) when it is large enough."""
    from cadence.flows.partition import run_parts

    run = run_parts(
        store,
        settings,
        rules,
        start,
        end,
        replay_history=replay_history,
        parts=parts,
        progress=progress,
    )
    sim = Simulation(start=start, end=end, passes=len(run.moments))
    zones = {cid: tz or settings.default_timezone for cid, tz in run.zones.items()}
    for cid in zones:
        sim.before[cid] = [0] * sim.weeks
        sim.after[cid] = [0] * sim.weeks
    for email in run.emails:
        sim.emails.append(
            SimulatedEmail(email, run.subjects.get(email.id), zones[email.customer_id])
        )
        week = sim.week_of(email.send_at)
        if week is not None and not email.to_owner:
            sim.after[email.customer_id][week] += 1
    for message, decision in run.outcomes:
        if message.kind == MessageKind.RECORDED:
            # what other systems sent counts the same with cadence or without it; the
            # figure is emails: a call, a booking, a cancelled one count nowhere
            week = sim.week_of(message.sent_at)
            emailed = (
                message.channel == "email"
                and not message.planned
                and decision.status is Status.RECORDED
            )
            if week is not None and emailed:
                sim.before[message.customer_id][week] += 1
                sim.after[message.customer_id][week] += 1
            continue
        if message.id in run.settled:
            continue
        due = message.send_after is not None and message.send_after <= end
        if not (due or decision.final):
            continue  # open, and not for this period
        sim.decisions.append((message, decision))
        week = sim.week_of(message.send_after)
        if week is not None and message.to is None:
            sim.before[message.customer_id][week] += 1
    return sim
