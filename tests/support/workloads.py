"""Seeded multi-customer workloads for the differential tests: several accounts and time
zones (across a daylight-saving change for some seeds), account limits, calendar limits,
merges, suppressions, playbooks with `cancel_on`, transactional mail, mail recorded from
other systems, and events that take effect mid-way (check-ins fired and cancelled, an
unsubscribe, a hard bounce, an attribute that turns a suppression on).

Every time the workload holds, and every time its rules can make (window openings, limit
periods, digests, sweep periods), falls on a whole hour of UTC: the zones have whole-hour
offsets. So a pass every hour sees every moment anything is due, which lets a test step a
plain hourly clock beside the engine's own due moments.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
H = timedelta(hours=1)
D = timedelta(days=1)

ZONES = [
    "America/New_York",
    "Europe/Berlin",
    "Asia/Tokyo",
    "UTC",
    "Australia/Sydney",
    "America/Los_Angeles",
]
#: Mondays to start from: an ordinary week, and weeks holding a daylight-saving change
#: (Europe 25 Oct, the US 1 Nov, Australia 4 Oct 2026)
STARTS = [
    datetime(2026, 11, 16, tzinfo=UTC),
    datetime(2026, 10, 19, tzinfo=UTC),
    datetime(2026, 10, 26, tzinfo=UTC),
    datetime(2026, 9, 28, tzinfo=UTC),
]
KINDS = [  # role, category, topics, transactional, weight
    ("marketing", "announcement", ["feature:reports", "feature:sso"], False, 3),
    ("product", "tip", ["tips:dashboards", "tips:alerts", "feature:reports"], False, 3),
    ("sales", "offer", ["pricing", "upgrade"], False, 2),
    ("success", "onboarding", [None], False, 1),
    ("support", "ticket-reply", [None], True, 1),
    ("billing", "receipt", [None], True, 1),
]

RULES = """\
priorities: {support: 100, billing: 90, success: 70, sales: 50, product: 30, marketing: 10}
max_delay: 5d
limits:
  - name: weekly-total
    max: 3
    per: 7d
  - name: breathing-room
    min_gap: 20h
  - name: sales-calendar
    roles: [sales]
    max: 1
    per: 7d
    window: calendar
  - name: account-announcements
    scope: account
    categories: [announcement]
    max: 1
    per: 7d
  - name: account-offers
    scope: account
    categories: [offer]
    max: 2
    per: 7d
    over: drop
send_windows:
  - roles: [support, billing]
    days: mon-sun
    hours: "07:00-21:00"
  - days: mon-fri
    hours: "09:00-17:00"
suppress:
  - name: same-topic
    same: topic
    within: 7d
  - name: no-offers-when-red
    categories: [offer]
    when: customer.health | default("green") == "red"
merge:
  - name: tips-digest
    categories: [tip, onboarding]
    window: 24h
    max_items: 3
    template: digest
playbooks:
  - name: after-onboarding
    on: onboarding_completed
    wait: 2d
    send: {role: success, category: check-in, subject: "How is it going?",
           body_text: "A check-in after onboarding.", expires_after: 4d}
    cancel_on: [ticket_opened]
  - name: quiet
    every: 1d
    when: days_since_contact() >= 6
    send: {role: success, category: check-in, subject: "Anything we can help with?",
           body_text: "A check-in for a quiet customer.", expires_after: 3d}
    cooldown: 30d
"""


@dataclass
class Workload:
    seed: int
    start: datetime
    end: datetime
    customers: list[dict[str, Any]] = field(default_factory=list)
    submitted: list[dict[str, Any]] = field(default_factory=list)
    recorded: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def days(self) -> int:
        return (self.end - self.start).days


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def workload(seed: int, *, customers: int = 8, days: int = 10) -> Workload:
    """A seeded workload of `customers` customers over `days` days."""
    rnd = random.Random(seed)
    start = STARTS[seed % len(STARTS)]
    w = Workload(seed, start, start + days * D)
    accounts = ["acme", "globex", "initech", None]
    for i in range(customers):
        cid = f"c-{i:02d}"
        w.customers.append(
            {
                "id": cid,
                "email": f"{cid}@example.test",
                "name": f"Customer {i}",
                "timezone": rnd.choice(ZONES),
                "account": accounts[i % len(accounts)],
                "attributes": {"plan": rnd.choice(["pro", "free"])},
            }
        )
        for j in range(rnd.randint(0, 2)):  # what other systems sent before the start
            role, category, topics, _, _ = rnd.choices(KINDS, [k[4] for k in KINDS])[0]
            w.recorded.append(
                {
                    "id": f"rec-{cid}-{j}",
                    "customer": cid,
                    "role": role,
                    "category": category,
                    "topic": rnd.choice(topics),
                    "subject": f"{category} sent elsewhere",
                    "body_text": "recorded",
                    "human": rnd.random() < 0.3,
                    "sent_at": _iso(start - rnd.randint(1, 9 * 24) * H),
                }
            )
        for j in range(rnd.randint(2, 6)):
            role, category, topics, transactional, _ = rnd.choices(KINDS, [k[4] for k in KINDS])[0]
            after = start + rnd.randint(-12, days * 24 - 1) * H
            item: dict[str, Any] = {
                "id": f"m-{cid}-{j}",
                "customer": cid,
                "role": role,
                "category": category,
                "topic": rnd.choice(topics),
                "subject": f"{category} {j} for {cid}",
                "body_text": f"The {category}.",
                "transactional": transactional,
                "send_after": _iso(after),
            }
            if rnd.random() < 0.3:
                item["expires_at"] = _iso(after + rnd.randint(12, 72) * H)
            w.submitted.append(item)
        _events(rnd, w, cid, i)
    return w


def _events(rnd: random.Random, w: Workload, cid: str, i: int) -> None:
    """Events taking effect mid-way: stored at the start, applied when their time comes."""
    hours = w.days * 24

    def at() -> str:
        return _iso(w.start + rnd.randint(0, hours - 1) * H)

    if rnd.random() < 0.5:
        onboarded = rnd.randint(0, hours // 2)
        w.events.append(
            {
                "id": f"ev-{cid}-onb",
                "customer": cid,
                "type": "onboarding_completed",
                "at": _iso(w.start + onboarded * H),
            }
        )
        if rnd.random() < 0.5:  # a ticket before the check-in goes: it is cancelled
            w.events.append(
                {
                    "id": f"ev-{cid}-tick",
                    "customer": cid,
                    "type": "ticket_opened",
                    "at": _iso(w.start + (onboarded + rnd.randint(1, 40)) * H),
                }
            )
    roll = rnd.random()
    if roll < 0.15:
        w.events.append(
            {
                "id": f"ev-{cid}-unsub",
                "customer": cid,
                "type": "unsubscribed",
                "at": at(),
                "data": {"categories": rnd.choice([["announcement"], ["offer"], []])},
            }
        )
    elif roll < 0.22:
        w.events.append(
            {
                "id": f"ev-{cid}-bounce",
                "customer": cid,
                "type": "bounced",
                "at": at(),
                "data": {"kind": "hard"},
            }
        )
    elif roll < 0.4:
        w.events.append(
            {
                "id": f"ev-{cid}-red",
                "customer": cid,
                "type": "health_changed",
                "at": at(),
                "attributes": {"health": "red"},
            }
        )


def write_rules(folder: Path) -> Path:
    rules = folder / "rules"
    rules.mkdir(parents=True, exist_ok=True)
    (rules / "rules.yaml").write_text(RULES)
    return rules


def write_inputs(w: Workload, folder: Path) -> dict[str, Path]:
    """The workload as the files a team would feed in (JSON Lines)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, records in (
        ("customers", w.customers),
        ("recorded", w.recorded),
        ("submitted", w.submitted),
        ("events", w.events),
    ):
        path = out[name] = folder / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return out


def config(folder: Path, database_url: str) -> Path:
    """A cadence.yaml for the workload: its rules, the starter templates (the digest), the
    file transport."""
    rules = write_rules(folder)
    path = folder / "cadence.yaml"
    path.write_text(
        f"database_url: {database_url}\n"
        f"rules_dir: {rules}\n"
        f"templates_dir: {REPO / 'templates'}\n"
        "transport: {kind: file, file: {dir: " + str(folder / "outbox") + "}}\n"
    )
    return path
