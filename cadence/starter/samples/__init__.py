"""Sample customers, messages, recorded messages and events, in the contract's input formats.

Why generated, not static files: every time is relative to a `base` Monday (00:00 UTC), so the
samples are always about the weeks around the moment `cadence init` or `cadence demo` writes
them, and the rules about "the first two weeks" or "within 14 days" behave the same on any date.

What they show (customer c-17, Ana at acme, gets eight messages from six roles over three weeks):
- a success onboarding email and a product tour within a day of each other (a merge rule
  turns them into one digest), which waits until the call Kim had with her six days before
  leaves the week: with Kim's note and a newsletter, that call filled the weekly cap;
- a marketing announcement about Reports that a CSM's note, recorded from the CRM five days
  earlier on the same topic, makes redundant;
- a sales offer, more marketing, and two transactional messages (a ticket reply, a receipt)
  that no fatigue rule may touch.
Around her: a customer with an onboarding call booked for the morning her automated welcome
would go (the call covers it, and the product tour waits a day after it), a customer
unsubscribed from announcements and newsletters, a hard bounce, a customer too new for
marketing, and the lifecycle events the playbooks react to (onboarding_completed,
ticket_opened/ticket_resolved, usage_dropped).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

Record = dict[str, Any]
FILES = ("customers", "messages", "recorded", "events")

KIM = {"email": "kim@vendor.test", "name": "Kim Lee"}  # acme's customer success manager
RAVI = {"email": "ravi@vendor.test", "name": "Ravi Patel"}  # sales
LEE = {"email": "lee@vendor.test", "name": "Lee Morgan"}  # globex's customer success manager
SUPPORT = {"email": "support@vendor.test", "name": "Vendor Support"}
BILLING = {"email": "billing@vendor.test", "name": "Vendor Billing"}
OWNERS = {"acme": "kim@vendor.test", "globex": "lee@vendor.test", "initech": "ola@vendor.test"}
OWNER_NAMES = {"acme": "Kim", "globex": "Lee", "initech": "Ola"}


def iso(t: datetime) -> str:
    """ISO 8601 in UTC with a `Z`: the contract rejects times without an offset."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _day(t: datetime) -> str:
    return f"{t.day} {t:%B %Y}"


def _at(base: datetime, days: float, hour: float = 0) -> datetime:
    return base + timedelta(days=days, hours=hour)


def _customers(base: datetime) -> list[Record]:
    rows = [
        # id, email, name, timezone, account, plan, signup (days before base)
        ("c-17", "ana@acme.test", "Ana", "America/New_York", "acme", "pro", 40),
        ("c-18", "ben@acme.test", "Ben Okafor", "Europe/London", "acme", "pro", 55),
        ("c-21", "lena@globex.test", "Lena Vogel", "Europe/Berlin", "globex", "business", 10),
        ("c-22", "hiro@globex.test", "Hiro Tanaka", "Asia/Tokyo", "globex", "business", 120),
        ("c-23", "jonas@globex.test", "Jonas Berg", "Europe/Berlin", "globex", "business", 300),
        ("c-31", "mia@initech.test", "Mia Clarke", "Australia/Sydney", "initech", "free", 70),
        ("c-32", "sam@initech.test", "Sam Rivera", "America/Los_Angeles", "initech", "pro", 35),
        ("c-33", "priya@initech.test", "Priya Shah", "UTC", "initech", "pro", 90),
    ]
    return [
        {
            "id": cid,
            "email": email,
            "name": name,
            "timezone": tz,
            "account": account,
            "attributes": {
                "plan": plan,
                "signup_at": iso(_at(base, -signup, 9)),
                "owner_email": OWNERS[account],
                "owner_name": OWNER_NAMES[account],
                "open_tickets": 0,
            },
        }
        for cid, email, name, tz, account, plan, signup in rows
    ]


def _message(
    mid: str,
    customer: str,
    role: str,
    category: str,
    send_after: datetime,
    *,
    template: str | None = None,
    data: Record | None = None,
    topic: str | None = None,
    transactional: bool = False,
    expires_at: datetime | None = None,
    sender: Record | None = None,
    **extra: Any,
) -> Record:
    record: Record = {"id": mid, "customer": customer, "role": role, "category": category}
    if topic is not None:
        record["topic"] = topic
    if template is not None:
        record["template"] = template
        record["data"] = data or {}
    record["send_after"] = iso(send_after)
    if expires_at is not None:
        record["expires_at"] = iso(expires_at)
    record["transactional"] = transactional
    record["priority"] = None
    if sender is not None:
        record["from"] = sender  # the contract's `from`: a role's or a person's own sender
    record.update(extra)
    return record


def _ana(base: datetime) -> list[Record]:
    """Customer c-17: eight messages from six roles over three weeks."""
    return [
        _message(
            "cs-12",
            "c-17",
            "success",
            "onboarding",
            _at(base, 1, 14),
            template="onboarding_welcome",
            data={"product": "Vendor Analytics", "guide_url": "https://vendor.test/start/pro"},
            sender=KIM,
        ),
        _message(
            "prd-7",
            "c-17",
            "product",
            "product-tour",
            _at(base, 1, 18),
            template="product_tour",
            data={"highlights": ["Dashboards", "Scheduled reports", "Slack alerts"]},
        ),
        _message(
            "mkt-301",
            "c-17",
            "marketing",
            "announcement",
            _at(base, 2),
            topic="feature:reports",
            template="feature_announcement",
            data={"feature": "Reports", "summary": "Build a report once; it arrives every Monday."},
            expires_at=_at(base, 14),
        ),
        _message(
            "sup-501",
            "c-17",
            "support",
            "ticket-reply",
            _at(base, 2, 15.5),
            template="ticket_reply",
            transactional=True,
            data={
                "ticket": "T-1042",
                "title": "CSV export times out",
                "reply": "We found the slow query behind your CSV export and fixed it: exports "
                "of up to a million rows now finish in under a minute.\n\nCould you try again "
                "and let us know?",
                "agent": "Sam from Support",
            },
            sender=SUPPORT,
        ),
        _message(
            "sales-44",
            "c-17",
            "sales",
            "offer",
            _at(base, 3, 15),
            topic="upgrade:business",
            template="upgrade_offer",
            data={"plan": "Business", "discount": "20%", "until": _day(_at(base, 25))},
            sender=RAVI,
        ),
        _message(
            "bill-88",
            "c-17",
            "billing",
            "receipt",
            _at(base, 7, 13),
            template="receipt",
            transactional=True,
            data={
                "amount": "$490.00",
                "invoice": f"INV-{_at(base, 7):%Y%m}-1107",
                "period": f"{_at(base, 7):%B %Y}",
            },
            sender=BILLING,
        ),
        _message(
            "mkt-302",
            "c-17",
            "marketing",
            "newsletter",
            _at(base, 8, 14),
            subject="The Vendor monthly: three dashboards our customers love",
            body_text="Hi Ana,\n\nThis month: three dashboards our customers built and how "
            "to copy them in two clicks.\n\nRead it: https://vendor.test/monthly\n",
            body_html="<p>Hi Ana,</p><p>This month: three dashboards our customers built and "
            'how to copy them in two clicks.</p><p><a href="https://vendor.test/monthly">'
            "Read it</a></p>",
        ),
        _message(
            "mkt-303",
            "c-17",
            "marketing",
            "announcement",
            _at(base, 15, 14),
            topic="feature:alerts",
            template="feature_announcement",
            data={"feature": "Smart alerts", "url": "https://vendor.test/whats-new/alerts"},
        ),
    ]


def _others(base: datetime) -> list[Record]:
    return [
        _message(
            "mkt-311", "c-18", "marketing", "announcement", _at(base, 2, 9),
            topic="feature:reports", template="feature_announcement", data={"feature": "Reports"},
        ),
        # Lena signed up ten days ago: onboarding and a tour, and marketing that must wait;
        # her onboarding call with Lee is booked for the afternoon the welcome would go
        _message(
            "cs-21", "c-21", "success", "onboarding", _at(base, 0, 8), topic="onboarding",
            template="onboarding_welcome", data={"product": "Vendor Analytics"},
        ),
        _message(
            "prd-21", "c-21", "product", "product-tour", _at(base, 0, 13),
            template="product_tour", data={},
        ),
        _message(
            "mkt-321", "c-21", "marketing", "announcement", _at(base, 2, 8),
            topic="feature:reports", template="feature_announcement", data={"feature": "Reports"},
        ),
        # Hiro left announcements and newsletters; his receipt still goes
        _message(
            "mkt-322", "c-22", "marketing", "announcement", _at(base, 2, 1),
            topic="feature:reports", template="feature_announcement", data={"feature": "Reports"},
        ),
        _message(
            "bill-22", "c-22", "billing", "receipt", _at(base, 1, 2),
            template="receipt", transactional=True,
            data={"amount": "¥148,000", "invoice": f"INV-{_at(base, 1):%Y%m}-2202"},
        ),
        _message(
            "cs-23", "c-23", "success", "check-in", _at(base, 3, 9),
            template="checkin_renewal", data={"renewal_date": _day(_at(base, 30))},
        ),
        # Mia's address bounced hard: nothing reaches her, not even transactional mail
        _message(
            "mkt-331", "c-31", "marketing", "newsletter", _at(base, 2, 22),
            subject="The Vendor monthly", body_text="Hi Mia,\n\nThis month at Vendor...\n",
        ),
        _message(
            "sup-531", "c-31", "support", "ticket-reply", _at(base, 1, 23),
            template="ticket_reply", transactional=True,
            data={"ticket": "T-1090", "reply": "Your workspace is restored."},
        ),
        _message(
            "prd-32", "c-32", "product", "product-tour", _at(base, 1, 17),
            template="product_tour", data={},
        ),
        _message(
            "prd-33", "c-33", "product", "tip", _at(base, 1, 10),
            template="product_tour", data={"highlights": ["Keyboard shortcuts"]},
        ),
    ]  # fmt: skip


def _recorded(base: datetime) -> list[Record]:
    """Sent by people and other systems, calls and meetings included; cadence counts them like
    its own emails."""
    return [
        {
            "id": "crm-5501", "customer": "c-17", "role": "success", "category": "note",
            "topic": "feature:reports", "human": True, "from": KIM,
            "subject": "Your question about reports",
            "body_text": "Hi Ana, as promised on our call: the new Reports feature does exactly "
            "the weekly export you asked about. I've switched it on for acme. Kim",
            "sent_at": iso(_at(base, -5, 15.5)), "transactional": False,
        },
        # the call Kim's note follows up on, from her calendar: a touch like an email
        {
            "id": "call-5498", "customer": "c-17", "role": "success", "category": "check-in",
            "topic": "feature:reports", "channel": "call", "human": True, "from": KIM,
            "summary": "Ana needs a weekly CSV export for her board; walked her through Reports",
            "sent_at": iso(_at(base, -6, 19)), "transactional": False,
        },
        {
            "id": "hs-7781", "customer": "c-17", "role": "marketing", "category": "newsletter",
            "subject": "Vendor product news", "body_text": "(sent from the marketing platform)",
            "sent_at": iso(_at(base, -4, 14)), "transactional": False,
        },
        {
            "id": "crm-5510", "customer": "c-21", "role": "sales", "category": "intro",
            "human": True, "from": RAVI, "subject": "Welcome aboard",
            "body_text": "Hi Lena, great to have globex with us. Ravi",
            "sent_at": iso(_at(base, -2, 10)), "transactional": False,
        },
        # booked in Lee's calendar for Monday afternoon (`planned_at`): it counts then, and
        # is recorded again with `sent_at` once it took place
        {
            "id": "call-5521", "customer": "c-21", "role": "success", "category": "onboarding",
            "topic": "onboarding", "channel": "call", "human": True, "from": LEE,
            "summary": "Onboarding: connect the data warehouse, build the first dashboard",
            "planned_at": iso(_at(base, 0, 15)), "transactional": False,
        },
        {
            "id": "zd-3301", "customer": "c-33", "role": "support", "category": "ticket-reply",
            "human": True, "from": SUPPORT, "subject": "Re: [T-1077] Dashboard will not load",
            "body_text": "Hi Priya, we have fixed the dashboard. Sorry for the trouble!",
            "sent_at": iso(_at(base, -1, 11)), "transactional": True,
        },
    ]  # fmt: skip


def _events(base: datetime) -> list[Record]:
    def event(eid: str, customer: str, kind: str, at: datetime, **kw: Any) -> Record:
        return {"id": eid, "customer": customer, "type": kind, "at": iso(at), **kw}

    return [
        event(
            "ev-101", "c-22", "unsubscribed", _at(base, -20, 3),
            data={"categories": ["announcement", "newsletter"]},
        ),
        event(
            "ev-102", "c-31", "bounced", _at(base, -6, 2),
            data={"kind": "hard", "reason": "550 5.1.1 mailbox unknown"},
        ),
        event("ev-103", "c-32", "onboarding_completed", _at(base, -12, 18), data={}),
        event("ev-104", "c-18", "onboarding_completed", _at(base, -9, 11), data={}),
        event(
            "ev-105", "c-33", "ticket_opened", _at(base, -4, 9),
            data={"ticket": "T-1077"}, attributes={"open_tickets": 1},
        ),
        event(
            "ev-106", "c-33", "ticket_resolved", _at(base, -1, 11),
            data={"ticket": "T-1077"}, attributes={"open_tickets": 0},
        ),
        event(
            "ev-107", "c-17", "ticket_opened", _at(base, -1, 20),
            data={"ticket": "T-1042"}, attributes={"open_tickets": 1},
        ),
        event(
            "ev-108", "c-23", "usage_dropped", _at(base, -1, 6),
            data={"metric": "weekly active users", "change": "-60%", "period": "last 14 days"},
        ),
    ]  # fmt: skip


def sample_records(base: datetime) -> dict[str, list[Record]]:
    """`customers`, `messages` (to submit), `recorded` and `events`, JSON-ready, around `base`
    (meant to be a Monday 00:00 UTC)."""
    if base.tzinfo is None:
        raise ValueError("base must be an aware datetime (a Monday 00:00 UTC)")
    base = base.astimezone(UTC)
    return {
        "customers": _customers(base),
        "messages": _ana(base) + _others(base),
        "recorded": _recorded(base),
        "events": _events(base),
    }


def write_samples(directory: Path, base: datetime) -> list[Path]:
    """Writes `customers.jsonl`, `messages.jsonl`, `recorded.jsonl` and `events.jsonl`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, records in sample_records(base).items():
        path = directory / f"{name}.jsonl"
        lines = (json.dumps(r, ensure_ascii=False) for r in records)
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        written.append(path)
    return written
