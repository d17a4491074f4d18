"""`cadence simulate`: every customer through virtual time, sending and storing nothing.

"Before" is what customers get with no cadence at all: every message goes on its own at its
`send_after` (and what other systems sent). "After" is what the engine sends under the rules.
With `replay_history`, messages recorded from other systems inside the period become
candidates too, to show what a rule change would have done to last month's mail.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cadence.engine.simulation import Outcome, apply_event, simulate_customer
from cadence.model import Message, MessageKind, Reachability

if TYPE_CHECKING:
    from cadence.rules.model import Rules
    from cadence.store.gateway import Store

WEEK = timedelta(days=7)


@dataclass
class Simulation:
    start: datetime
    end: datetime
    outcomes: list[Outcome] = field(default_factory=list)
    before: dict[str, list[int]] = field(default_factory=dict)  # customer -> emails per week
    after: dict[str, list[int]] = field(default_factory=dict)
    fixed: dict[str, list[int]] = field(default_factory=dict)  # recorded mail we do not replay

    def stats(self) -> dict[str, Any]:
        statuses: Counter[str] = Counter()
        by_rule: Counter[str] = Counter()
        roles_in: Counter[str] = Counter()
        roles_out: Counter[str] = Counter()
        merged = 0
        for o in self.outcomes:
            kinds = {m.id: m for m in o.messages}
            for d in o.decisions:
                statuses[str(d.status)] += 1
                if d.rule:
                    by_rule[f"{d.status}: {d.rule}"] += 1
                roles_in[kinds[d.message_id].role] += 1
            for e in o.emails:
                roles_out[e.role] += 1
                merged += len(e.members) > 1
        return {
            "customers": len(self.outcomes),
            "weeks": self.weeks,
            "emails_per_customer_week": {
                "before": distribution(self.before.values()),
                "after": distribution(self.after.values()),
            },
            "messages": sum(statuses.values()),
            "emails": sum(roles_out.values()),
            "merged_emails": merged,
            "by_status": dict(statuses.most_common()),
            "by_rule": dict(by_rule.most_common()),
            "messages_by_role": dict(roles_in.most_common()),
            "emails_by_role": dict(roles_out.most_common()),
        }

    @property
    def weeks(self) -> int:
        return max(1, math.ceil((self.end - self.start) / WEEK))

    def week_of(self, t: datetime) -> int | None:
        if not self.start <= t < self.end:
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
    store: Store,
    rules: Rules,
    start: datetime,
    end: datetime,
    default_timezone: str,
    *,
    replay_history: bool = False,
    batch: int = 500,
) -> Simulation:
    sim = Simulation(start=start, end=end)
    after: str | None = None
    while True:
        ids = store.customer_page(after, batch)
        if not ids:
            return sim
        after = ids[-1]
        for item in store.simulation_inputs(ids, start, end):
            customer = replace(item.customer, reach=Reachability())
            for event in item.events:
                if event.at < start:
                    customer = apply_event(customer, event)
            candidates = [
                m for m in item.submitted if m.send_after is not None and m.send_after < end
            ]
            history = list(item.sent_before)
            fixed = [0] * sim.weeks
            for m in item.recorded:
                assert m.sent_at is not None
                week = sim.week_of(m.sent_at)
                if replay_history and week is not None:
                    candidates.append(_as_candidate(m))
                else:
                    history.append(_sent(m))
                    if week is not None:
                        fixed[week] += 1
            outcome = simulate_customer(
                customer, candidates, history, item.events, rules, start, end, default_timezone
            )
            sim.outcomes.append(outcome)
            before = list(fixed)
            for m in candidates:
                week = sim.week_of(m.send_after or start)
                if week is not None:
                    before[week] += 1
            got = list(fixed)
            for e in outcome.emails:
                week = sim.week_of(e.send_at)
                if week is not None:
                    got[week] += 1
            sim.before[customer.id] = before
            sim.after[customer.id] = got
            sim.fixed[customer.id] = fixed


def _as_candidate(m: Message) -> Message:
    """A recorded message replayed as if cadence had been asked to send it."""
    return replace(
        m,
        kind=MessageKind.SUBMITTED,
        send_after=m.sent_at,
        sent_at=None,
        subject=m.subject or f"(recorded {m.id})",
        body_text=m.body_text or "",
    )


def _sent(m: Message) -> Any:
    from cadence.model import Sent

    assert m.sent_at is not None
    return Sent(m.id, m.sent_at, m.customer_id, (m,))
