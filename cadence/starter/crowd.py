"""A crowd of sample customers for `cadence demo`: a few hundred people across time zones and
accounts, a month of mail from every role (some of it redundant, some already sent from a
CRM), the calls and meetings their CSMs and reps had or booked, and lifecycle events, in
exactly the contract's input formats. Seeded: the same base gives the same crowd."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Sao_Paulo",
]
NAMES = [
    "Ana",
    "Ben",
    "Chloé",
    "Dev",
    "Emi",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jun",
    "Kofi",
    "Lena",
    "Mateo",
    "Nia",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
]
#: role, category, template, topics, transactional, the chance of one a week. A topic names
#: one piece of content: `{week}` is the week's newsletter or tip, `{launch}` the feature
#: launched that week, `{offer}` that week's sales campaign (the first of each is what the
#: CSMs wrote about, so some of the mail repeats what a person said)
MAIL: list[tuple[str, str, str | None, list[str | None], bool, float]] = [
    ("marketing", "announcement", "feature_announcement", ["feature:{launch}"], False, 0.9),
    ("marketing", "newsletter", None, ["newsletter:{week}"], False, 0.7),
    ("product", "tip", None, ["tip:dashboards-{week}", "tip:alerts-{week}"], False, 0.8),
    ("sales", "offer", "upgrade_offer", ["offer:{offer}"], False, 0.4),
    ("success", "onboarding", "onboarding_welcome", ["onboarding"], False, 0.2),
    ("product", "product-tour", "product_tour", [None], False, 0.2),
    ("billing", "receipt", "receipt", [None], True, 0.25),
]
LAUNCHES = ["reports", "sso", "alerts", "exports"]
OFFERS = ["upgrade", "annual-plan", "more-seats", "webinar"]


def _topic(topic: str | None, week: int) -> str | None:
    if topic is None:
        return None
    return topic.format(week=week, launch=LAUNCHES[week], offer=OFFERS[week])


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _data(template: str | None, i: int) -> dict[str, Any]:
    data: dict[str, dict[str, Any]] = {
        "feature_announcement": {"feature": "Reports", "summary": "Build a report in two clicks."},
        "upgrade_offer": {"plan": "Enterprise", "discount": "15%"},
        "onboarding_welcome": {
            "product": "Vendor Analytics",
            "guide_url": "https://vendor.test/start",
        },
        "product_tour": {"highlights": ["Dashboards", "Alerts"]},
        "receipt": {"amount": "$49.00", "invoice": f"INV-C{i:04d}"},
    }
    return data.get(template or "", {})


#: calls and meetings: role, channel, category, topics, the chance of one done in the three
#: weeks before the base, the chance of one booked in the three weeks after it
TOUCHES: list[tuple[str, str, str, list[str | None], float, float]] = [
    ("success", "call", "check-in", ["onboarding", "feature:reports", "renewal", None], 0.3, 0.1),
    ("success", "call", "onboarding", ["onboarding"], 0.0, 0.15),
    ("sales", "meeting", "demo", ["offer:upgrade"], 0.1, 0.05),
]
CSM = {"email": "kim@vendor.test", "name": "Kim Lee"}
REP = {"email": "ravi@vendor.test", "name": "Ravi Patel"}


def _touches(rnd: random.Random, cid: str, base: datetime) -> list[dict[str, Any]]:
    """A customer's calls and meetings, done (`sent_at`) or booked ahead (`planned_at`),
    in working hours somewhere between Europe and the Americas."""
    out = []
    for role, channel, category, topics, done, booked in TOUCHES:
        for when, chance in (("sent_at", done), ("planned_at", booked)):
            if rnd.random() >= chance:
                continue
            days = -rnd.randint(1, 21) if when == "sent_at" else rnd.randint(0, 20)
            at = base + timedelta(days=days, hours=rnd.randint(13, 20))
            topic = rnd.choice(topics)
            about = f" about {topic}" if topic else ""
            record: dict[str, Any] = {
                "id": f"{cid}-{channel}-{category[:4]}-{'done' if when == 'sent_at' else 'booked'}",
                "customer": cid,
                "role": role,
                "category": category,
                "channel": channel,
                "human": True,
                "from": CSM if role == "success" else REP,
                "summary": f"{category.capitalize()} {channel}{about}",
                when: _iso(at),
            }
            if topic is not None:
                record["topic"] = topic
            out.append(record)
    return out


def crowd_records(base: datetime, n: int = 200, seed: int = 11) -> dict[str, list[dict[str, Any]]]:
    rnd = random.Random(seed)
    # the calls and meetings draw from a generator of their own, so that adding them left the
    # rest of the crowd as it was
    calls = random.Random(seed * 7919)
    out: dict[str, list[dict[str, Any]]] = {
        "customers": [],
        "messages": [],
        "recorded": [],
        "events": [],
    }
    for i in range(n):
        cid = f"d-{i:03d}"
        signup = base - timedelta(days=rnd.randint(3, 300))
        out["customers"].append(
            {
                "id": cid,
                "email": f"{cid}@client{i % 40}.test",
                "name": rnd.choice(NAMES),
                "timezone": rnd.choice(ZONES),
                "account": f"client{i % 40}",
                "attributes": {
                    "plan": rnd.choice(["free", "pro", "pro", "enterprise"]),
                    "signup_at": _iso(signup),
                    "owner_email": "kim@vendor.test",
                    "open_tickets": 0,
                },
            }
        )
        for week in range(4):
            for role, category, template, topics, transactional, chance in MAIL:
                if rnd.random() > chance:
                    continue
                at = base + timedelta(days=7 * week + rnd.randint(0, 6), hours=rnd.randint(0, 23))
                record: dict[str, Any] = {
                    "id": f"{cid}-{role[:3]}-{category[:4]}-{week}",
                    "customer": cid,
                    "role": role,
                    "category": category,
                    "topic": _topic(rnd.choice(topics), week),
                    "send_after": _iso(at),
                    "transactional": transactional,
                }
                if template:
                    record.update(template=template, data=_data(template, i))
                else:
                    record.update(
                        subject=f"{category.title()} for you",
                        body_text=f"A short {category} from the {role} team.",
                    )
                out["messages"].append(record)
        for k in range(rnd.randint(0, 3)):  # mail a CSM or a rep sent from the CRM
            at = base - timedelta(days=rnd.randint(1, 20))
            out["recorded"].append(
                {
                    "id": f"{cid}-crm-{k}",
                    "customer": cid,
                    "role": rnd.choice(["success", "sales"]),
                    "category": "note",
                    "topic": rnd.choice(["feature:reports", "offer:upgrade", None]),
                    "human": True,
                    "subject": "Following up",
                    "sent_at": _iso(at),
                }
            )
        out["recorded"] += _touches(calls, cid, base)
        if rnd.random() < 0.3:
            out["events"].append(
                {
                    "id": f"{cid}-onb",
                    "customer": cid,
                    "type": "onboarding_completed",
                    "at": _iso(base - timedelta(days=rnd.randint(1, 10))),
                }
            )
        if rnd.random() < 0.15:
            opened = base + timedelta(days=rnd.randint(0, 20))
            out["events"].append(
                {
                    "id": f"{cid}-tk",
                    "customer": cid,
                    "type": "ticket_opened",
                    "at": _iso(opened),
                    "attributes": {"open_tickets": 1},
                }
            )
            out["events"].append(
                {
                    "id": f"{cid}-tr",
                    "customer": cid,
                    "type": "ticket_resolved",
                    "at": _iso(opened + timedelta(days=2)),
                    "attributes": {"open_tickets": 0},
                }
            )
        if rnd.random() < 0.05:
            out["events"].append(
                {
                    "id": f"{cid}-un",
                    "customer": cid,
                    "type": "unsubscribed",
                    "at": _iso(base + timedelta(days=rnd.randint(0, 20))),
                    "data": {"categories": ["announcement", "newsletter"]},
                }
            )
    return out
