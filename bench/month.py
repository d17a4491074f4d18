"""A seeded month of a B2B software company's customer mail, for `python -m bench outcome`.

Several hundred people (`size`) in accounts of one to five, six time zones, and everything
every role sends them: a weekly newsletter, feature announcements (which a CSM has often
already written about, a recorded human email on the same topic a few days before), sales
outreach, automated product tips several times a week, onboarding bursts from success,
product and sales for the accounts that sign up, support tickets (events that set
`open_tickets`) with transactional replies, monthly receipts, and the CSMs' own emails.

Each record is in the contract's input format (what `customers import`, `messages submit`,
`messages record` and `events ingest` read) and carries the moment it reaches cadence: a
campaign is scheduled days ahead, a tip or a ticket reply is submitted when it is due, a new
account is imported when it signs up, a CSM's email is synced from the CRM after it was
written. The outcome figure feeds the records in every two hours (`Month.batches`), so the
passes know about mail at most two hours before its sender did, and never before a message
may go.

The measured month (`start` to `end`, four weeks from a Monday) has a week of the same
traffic before it, so that limits meet a steady flow rather than an empty ledger on its
first day, and ten days after it, so that every message of the month is settled (sent,
merged, suppressed or expired: the month's last announcement, two weeks of life, expires
inside them) while mail keeps coming.
Everything depends only on `seed` and `size`.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

#: the first day of the measured month: a Monday, after the autumn clock changes of 2026
START = datetime(2026, 11, 2, tzinfo=UTC)
DAYS = 28
WARMUP = timedelta(days=7)
TAIL = timedelta(days=10)
H = timedelta(hours=1)
D = timedelta(days=1)

ZONES = [
    "America/Los_Angeles",
    "America/New_York",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Tokyo",
    "Australia/Sydney",
]
#: people per account and how common each size is (a mean of about 2.6)
ACCOUNT_SIZES = ([1, 2, 3, 4, 5], [3, 3, 3, 2, 1])
PLANS = (["free", "pro", "enterprise"], [3, 5, 2])
#: the share of people whose account signs up during the run (their onboarding bursts)
NEW_SHARE = 0.1

#: how long each kind of mail is worth sending after it may first go
EXPIRES = {
    "newsletter": 7 * D,
    "tip": 7 * D,
    "announcement": 14 * D,
    "offer": 10 * D,
    "onboarding": 5 * D,
}
#: (days after the run begins, feature, role): a launch every week and a half, on a weekday,
#: announced at 14:00 UTC to most customers and scheduled three days ahead
LAUNCHES = [
    (2, "reports", "marketing"),
    (14, "alerts", "product"),
    (22, "sso", "marketing"),
    (29, "api", "product"),
    (43, "exports", "marketing"),
]
#: the share of accounts whose CSM writes about a launch first (to the main contact; to each
#: of the others with the second chance), one to four days before it
CSM_ON_LAUNCH = (0.4, 0.3)
#: what CSMs write about otherwise: none of it is a topic automated mail has
CSM_TOPICS = ["account-review", "renewal", "training", "roadmap", "usage"]
#: a sales campaign per week of the run, each to a share of the non-enterprise customers
OFFERS = ["annual-plan", "more-seats", "pro-trial", "webinar", "case-study", "upgrade"]
OFFER_CHANCE = {"free": 0.2, "pro": 0.1, "enterprise": 0.0}
#: the onboarding burst after a signup: (delay, role, what it is about)
ONBOARDING = [
    (timedelta(minutes=5), "success", "welcome"),
    (2 * H, "product", "setup-guide"),
    (D, "sales", "meet-your-rep"),
    (2 * D, "product", "first-dashboard"),
    (3 * D, "success", "kickoff"),
    (5 * D, "product", "invite-your-team"),
]
TIPS = 40  # tips in the product's sequence; a customer gets each at most once
TICKET_CHANCE = 0.05  # a person opens a ticket in a given week


@dataclass(frozen=True, slots=True)
class Arrival:
    """One record and the moment it reaches cadence."""

    at: datetime
    kind: str  # customers, recorded, messages, events: the input it belongs to
    record: dict[str, Any]


@dataclass
class Month:
    seed: int
    size: int
    begin: datetime  # the traffic (and the passes) start: a week before `start`
    start: datetime  # the measured month
    end: datetime
    until: datetime  # the traffic and the passes stop
    arrivals: list[Arrival] = field(default_factory=list)
    #: when each person signed up (the ones already customers before `begin` too)
    signups: dict[str, datetime] = field(default_factory=dict)

    #: the order a batch is fed in: a record's customer is known before its mail and events
    ORDER = ("customers", "recorded", "messages", "events")

    def batches(
        self, every: timedelta = timedelta(hours=2)
    ) -> list[tuple[datetime, dict[str, list[dict[str, Any]]]]]:
        """The records grouped into feeds `every` so long (from `begin`), in time order. A
        feed takes what is submitted or happens in the span it opens, ahead of its moment (a
        message still goes no earlier than its `send_after`, an event takes effect at its
        `at`), and what a CSM wrote in the span before it: a CRM sync comes after the
        email, never before it."""
        feeds: dict[datetime, dict[str, list[dict[str, Any]]]] = defaultdict(
            lambda: {k: [] for k in self.ORDER}
        )
        for a in self.arrivals:
            spans = (a.at - self.begin) / every
            n = math.ceil(spans) if a.kind == "recorded" else math.floor(spans)
            feeds[self.begin + n * every][a.kind].append(a.record)
        return sorted((at, feed) for at, feed in feeds.items() if at < self.until)

    def records(self, kind: str) -> list[dict[str, Any]]:
        return [a.record for a in self.arrivals if a.kind == kind]

    def mix(self) -> Counter[tuple[str, str]]:
        """Submitted messages by (role, category), and events by ("event", type)."""
        out: Counter[tuple[str, str]] = Counter()
        for r in self.records("messages"):
            out[r["role"], r["category"]] += 1
        for r in self.records("recorded"):
            out["recorded " + r["role"], r["category"]] += 1
        for r in self.records("events"):
            out["event", r["type"]] += 1
        return out


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class _Person:
    id: str
    account: str
    zone: str
    plan: str
    signup: datetime
    main: bool  # the account's main contact: the CSM's and billing's person


class _Builder:
    def __init__(self, seed: int, size: int, start: datetime) -> None:
        self.rnd = random.Random(f"cadence-month-{seed}-{size}")
        self.m = Month(seed, size, start - WARMUP, start, start + DAYS * D, start + DAYS * D + TAIL)
        self.people: list[_Person] = []

    def add(self, at: datetime, kind: str, record: dict[str, Any]) -> None:
        self.m.arrivals.append(Arrival(at, kind, record))

    def local_hour(
        self, day: datetime, zone: str, lo: int, hi: int, *, exact: bool = True
    ) -> datetime:
        """A moment between `lo` and `hi` o'clock on `day`'s date in `zone` (a person at
        work; noon UTC has the same date in every zone of `ZONES`), as UTC; a whole
        hour unless `exact` (a person writes at any minute, a tool sends on the hour)."""
        from zoneinfo import ZoneInfo

        tz = ZoneInfo(zone)
        minute = self.rnd.randint(0, 59) if exact else 0
        local = day.astimezone(tz).replace(
            hour=self.rnd.randint(lo, hi - 1), minute=minute, second=0
        )
        return local.astimezone(UTC)

    # -- people ----------------------------------------------------------------------------

    def accounts(self) -> None:
        rnd, m = self.rnd, self.m
        sizes, weights = ACCOUNT_SIZES
        new_people = round(self.m.size * NEW_SHARE)
        k = 0
        while len(self.people) < m.size:
            account = f"a{k:04d}"
            k += 1
            people = min(rnd.choices(sizes, weights)[0], m.size - len(self.people))
            new = len(self.people) >= m.size - new_people
            if new:  # signs up during the run, early enough for its burst to be seen
                signup = m.begin + timedelta(
                    minutes=rnd.randint(0, (m.until - m.begin).days - 7) * 1440
                    + rnd.randint(0, 1439)
                )
            else:
                signup = m.begin - timedelta(
                    days=rnd.randint(20, 900), minutes=rnd.randint(0, 1439)
                )
            zone = rnd.choice(ZONES)
            plan = rnd.choices(*PLANS)[0]
            for j in range(people):
                # most of an account works in one zone; some sit elsewhere
                own = zone if rnd.random() < 0.8 else rnd.choice(ZONES)
                # the others join the account within its first weeks
                joined = signup + (
                    timedelta(0) if j == 0 or new else timedelta(days=rnd.randint(0, 30))
                )
                p = _Person(f"{account}-p{j}", account, own, plan, joined, j == 0)
                self.people.append(p)
                m.signups[p.id] = joined
                self.add(
                    max(joined, m.begin),
                    "customers",
                    {
                        "id": p.id,
                        "email": f"p{j}@{account}.test",
                        "name": f"Person {j} of {account}",
                        "timezone": own,
                        "account": account,
                        "attributes": {
                            "plan": plan,
                            "signup_at": iso(joined),
                            "open_tickets": 0,
                            "owner_email": f"csm{k % 7}@vendor.test",
                        },
                    },
                )
                if new:
                    self.onboarding(p)

    # -- mail ------------------------------------------------------------------------------

    def message(
        self,
        known: datetime,
        mid: str,
        p: _Person,
        role: str,
        category: str,
        topic: str | None,
        send_after: datetime,
        *,
        transactional: bool = False,
    ) -> None:
        record: dict[str, Any] = {
            "id": mid,
            "customer": p.id,
            "role": role,
            "category": category,
            "topic": topic,
            "subject": f"{category}: {topic or role}",
            "body_text": f"A {category} from the {role} team.",
            "transactional": transactional,
            "send_after": iso(send_after),
        }
        if category in EXPIRES:
            record["expires_at"] = iso(send_after + EXPIRES[category])
        if send_after < self.m.begin:
            return  # before the run: not part of its traffic
        # submitted once its customer is known, and never after it may go
        self.add(min(max(known, p.signup, self.m.begin), send_after), "messages", record)

    def recorded(self, mid: str, p: _Person, topic: str, sent_at: datetime) -> None:
        """An email a CSM wrote (none before the person was a customer); the CRM's sync
        brings it at the next feed (`Month.batches`)."""
        if sent_at < p.signup:
            return
        self.add(
            max(sent_at, self.m.begin),
            "recorded",
            {
                "id": mid,
                "customer": p.id,
                "role": "success",
                "category": "note",
                "topic": topic,
                "subject": f"About {topic}",
                "human": True,
                "sent_at": iso(sent_at),
            },
        )

    def onboarding(self, p: _Person) -> None:
        for delay, role, what in ONBOARDING:
            self.message(
                p.signup,
                f"onb-{what}-{p.id}",
                p,
                role,
                "onboarding",
                f"onboarding:{what}",
                p.signup + delay,
            )
        if self.rnd.random() < 0.7:
            at = p.signup + timedelta(days=self.rnd.randint(8, 20))
            self.add(
                at,
                "events",
                {
                    "id": f"onbdone-{p.id}",
                    "customer": p.id,
                    "type": "onboarding_completed",
                    "at": iso(at),
                },
            )

    def weekly(self) -> None:
        """Newsletters, tips, offers and tickets, week by week of the run."""
        rnd, m = self.rnd, self.m
        weeks = (m.until - m.begin).days // 7
        next_tip = {p.id: rnd.randrange(TIPS) for p in self.people}
        ticket_free = {p.id: m.begin for p in self.people}
        for w in range(weeks):
            monday = m.begin + w * 7 * D
            issue = f"{monday:%G-W%V}"
            letter = monday + 3 * D + 15 * H  # Thursday 15:00 UTC, scheduled two days ahead
            offer = OFFERS[w % len(OFFERS)]
            for p in self.people:
                if p.signup <= letter - 2 * D:
                    self.message(
                        letter - 2 * D,
                        f"nl-{issue}-{p.id}",
                        p,
                        "marketing",
                        "newsletter",
                        f"newsletter:{issue}",
                        letter,
                    )
                if p.signup <= monday:
                    # two or three tips a week; the automation runs on the hour
                    for day in sorted(rnd.sample(range(7), rnd.choice([2, 3]))):
                        at = monday + day * D + rnd.randint(0, 23) * H
                        n = next_tip[p.id] = (next_tip[p.id] + 1) % TIPS
                        self.message(
                            at, f"tip-{issue}-{day}-{p.id}", p, "product", "tip", f"tip:{n}", at
                        )
                    if rnd.random() < OFFER_CHANCE[p.plan]:
                        at = self.local_hour(
                            monday + rnd.randint(1, 4) * D + 12 * H, p.zone, 9, 16, exact=False
                        )
                        self.message(
                            at - D,
                            f"offer-{issue}-{p.id}",
                            p,
                            "sales",
                            "offer",
                            f"offer:{offer}",
                            at,
                        )
                if (
                    p.signup <= monday
                    and ticket_free[p.id] <= monday
                    and rnd.random() < TICKET_CHANCE
                ):
                    ticket_free[p.id] = self.ticket(
                        p, monday + timedelta(minutes=rnd.randint(0, 7 * 1440 - 1)), w
                    )

    def ticket(self, p: _Person, opened: datetime, w: int) -> datetime:
        """A ticket: opened (open_tickets 1), one to three replies from support, resolved
        (open_tickets 0) some hours after the last; returns when it was resolved."""
        rnd = self.rnd
        tid = f"t{w}-{p.id}"
        self.add(
            opened,
            "events",
            {
                "id": f"{tid}-opened",
                "customer": p.id,
                "type": "ticket_opened",
                "at": iso(opened),
                "attributes": {"open_tickets": 1},
            },
        )
        replies = sorted(
            opened + timedelta(minutes=rnd.randint(5, 20 * 60)) for _ in range(rnd.randint(1, 3))
        )
        for k, at in enumerate(replies):
            self.message(
                at, f"{tid}-reply{k}", p, "support", "ticket-reply", None, at, transactional=True
            )
        resolved = replies[-1] + timedelta(minutes=rnd.randint(60, 24 * 60))
        self.add(
            resolved,
            "events",
            {
                "id": f"{tid}-resolved",
                "customer": p.id,
                "type": "ticket_resolved",
                "at": iso(resolved),
                "attributes": {"open_tickets": 0},
            },
        )
        return resolved

    def launches(self) -> None:
        rnd, m = self.rnd, self.m
        by_account: dict[str, list[_Person]] = defaultdict(list)
        for p in self.people:
            by_account[p.account].append(p)
        for day, feature, role in LAUNCHES:
            at = m.begin + day * D + 14 * H
            if at >= m.until:
                continue
            topic = f"feature:{feature}"
            for people in by_account.values():
                csm = rnd.random() < CSM_ON_LAUNCH[0]
                for p in people:
                    if p.signup > at - 3 * D:
                        continue
                    if csm and (p.main or rnd.random() < CSM_ON_LAUNCH[1]):
                        wrote = self.local_hour(at - rnd.randint(1, 4) * D - 2 * H, p.zone, 9, 17)
                        self.recorded(f"csm-{feature}-{p.id}", p, topic, wrote)
                    if rnd.random() < 0.9:  # most customers: a few plans lack the feature
                        self.message(
                            at - 3 * D, f"ann-{feature}-{p.id}", p, role, "announcement", topic, at
                        )

    def csm_mail(self) -> None:
        """What CSMs write otherwise: to each main contact every two to six weeks (the last
        one before the run included, so contact times have a history), to the others now
        and then."""
        rnd, m = self.rnd, self.m
        for p in self.people:
            gap = (14, 42) if p.main else (40, 120)
            t = max(p.signup, m.begin - timedelta(days=rnd.randint(*gap))) + rnd.randint(0, 3) * D
            k = 0
            while t < m.until:
                if t >= p.signup:
                    self.recorded(
                        f"csm-{k}-{p.id}",
                        p,
                        rnd.choice(CSM_TOPICS),
                        self.local_hour(t, p.zone, 9, 17),
                    )
                k += 1
                t += timedelta(days=rnd.randint(*gap))

    def receipts(self) -> None:
        """A paid account's main contact gets a receipt every 30 days, on its billing day."""
        rnd, m = self.rnd, self.m
        for p in self.people:
            if not p.main or p.plan == "free":
                continue
            t = max(
                p.signup, m.begin + timedelta(days=rnd.randint(0, 29), hours=rnd.randint(0, 23))
            )
            n = 0
            while t < m.until:
                self.message(
                    t, f"rcpt-{n}-{p.id}", p, "billing", "receipt", None, t, transactional=True
                )
                n += 1
                t += 30 * D

    def build(self) -> Month:
        self.accounts()
        self.launches()
        self.weekly()
        self.csm_mail()
        self.receipts()
        m = self.m
        # nothing reaches cadence after the run stops; each record's moment, then its kind
        # and id, orders the arrivals (a stable order whatever the building order was)
        m.arrivals = sorted(
            (a for a in m.arrivals if a.at < m.until),
            key=lambda a: (a.at, Month.ORDER.index(a.kind), a.record["id"]),
        )
        return m


def month(seed: int, size: int, start: datetime = START) -> Month:
    """The seeded month of `size` people (see the module's docs)."""
    return _Builder(seed, size, start).build()


def redundant(m: Month) -> set[str]:
    """Submitted messages that are truly redundant: the same topic as an email a person
    (a CSM) wrote to that customer within the 14 days before the message may go. This reads
    the month's records; `cadence.report.outcome.redundant_ids` reads a ledger, with the same
    window."""
    from cadence.report.outcome import REDUNDANT_WITHIN

    written: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for r in m.records("recorded"):
        if r.get("human") and r.get("topic"):
            written[r["customer"], r["topic"]].append(parse(r["sent_at"]))
    out = set()
    for r in m.records("messages"):
        if r["transactional"] or not r["topic"]:
            continue
        at = parse(r["send_after"])
        within = written.get((r["customer"], r["topic"]), ())
        if any(at - REDUNDANT_WITHIN <= t <= at for t in within):
            out.add(r["id"])
    return out


def weeks_of(m: Month) -> int:
    return math.ceil((m.end - m.start) / (7 * D))
