"""Issue 22's three figures, computed from a ledger's rows. This is the one definition that
`cadence report`, `cadence demo` and `python -m bench outcome` all use.

- Emails per customer per week, p50 and p95. A cell is one person and one whole week of the
  period in which they were a customer. It counts the emails cadence sent (not the alerts to an
  account's owner) and the emails people wrote that were recorded. A call is not an email, and
  neither is a touch that was booked but not yet done.
- Transactional mail on time: the share of transactional messages sent within 5 minutes of
  their `send_after`. A message to an address that hard-bounced is left out, because nothing
  can reach that address and no rule delays it.
- Distinct content delivered: how much of the non-transactional submitted mail (playbooks'
  check-ins included, internal alerts not) was sent before it expired, alone or inside a
  digest. The truly redundant messages are left out: those on the same topic as an email a
  person wrote to that customer within the 14 days before. So are the messages still on their
  way (pending), which a live ledger has and a finished run does not.

Rows are mappings with the ledger's column names. Messages need id, customer_id, kind,
category, topic, human, transactional, channel, planned, recipient, send_after, sent_at,
status, rule and reason. Sent emails need id, customer_id, members, sent_at and to_owner.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cadence.flows.simulate import distribution
from cadence.model import MessageKind, Status

Row = Mapping[str, Any]

ON_TIME = timedelta(minutes=5)
REDUNDANT_WITHIN = timedelta(days=14)
WEEK = timedelta(days=7)
#: statuses of a message that has not gone yet but still may
PENDING = frozenset(
    {Status.SCHEDULED, Status.MERGED, Status.DEFERRED, Status.HELD, Status.UNCONFIRMED}
)


class Weeks:
    """The weeks of a period counted from its start, with one row of cells per customer.
    A row starts at the week the person became a customer. With `partial`, a last week
    shorter than seven days is kept too (for a chart that labels it). Without it, only
    whole weeks count, because a part of a week looks like a quiet week."""

    def __init__(
        self,
        start: datetime,
        end: datetime,
        since: Mapping[str, datetime | None],
        *,
        partial: bool = False,
    ) -> None:
        whole = int((end - start) // WEEK)
        self.start = start
        self.count = whole + 1 if partial and start + whole * WEEK < end else whole
        self.stop = min(end, start + self.count * WEEK)
        self.rows: dict[str, list[int]] = {}
        for cid, joined in since.items():
            if joined is None or joined < start:
                self.rows[cid] = [0] * self.count
            elif joined < self.stop:
                self.rows[cid] = [0] * (self.count - self.index(joined))

    def index(self, t: datetime) -> int:
        return int((t - self.start) // WEEK)

    def add(self, customer_id: str, t: datetime | None) -> None:
        """One email in the customer's cell for the week of `t` (nothing outside the weeks)."""
        row = self.rows.get(customer_id)
        if row is None or t is None or not self.start <= t < self.stop:
            return
        w = self.index(t) - (self.count - len(row))
        if w >= 0:
            row[w] += 1

    def distribution(self) -> dict[str, float]:
        return distribution(self.rows.values())

    def means(self) -> list[float]:
        """The mean per week, over the people who were customers in that week."""
        out = []
        for w in range(self.count):
            cells = [
                r[w - (self.count - len(r))] for r in self.rows.values() if len(r) >= self.count - w
            ]
            out.append(round(sum(cells) / len(cells), 3) if cells else 0.0)
        return out


def is_mail(r: Row) -> bool:
    """A message that is an email in somebody's inbox: not a call and not a touch another
    system only booked."""
    return bool(r["channel"] == "email" and not r["planned"])


def with_the_rules(msgs: Iterable[Row], sent: Iterable[Row], weeks: Weeks) -> Weeks:
    """Fill `weeks` with what reached the inboxes: the emails cadence sent (not the owner
    alerts) and the emails people wrote. What the CSMs wrote reaches the same inbox under any
    rules."""
    for e in sent:
        if not e["to_owner"]:
            weeks.add(e["customer_id"], e["sent_at"])
    for r in msgs:
        if r["kind"] == MessageKind.RECORDED and is_mail(r):
            weeks.add(r["customer_id"], r["sent_at"])
    return weeks


def without_rules(msgs: Iterable[Row], weeks: Weeks) -> Weeks:
    """Fill `weeks` with what sending everything would have put in the inboxes: every
    message as an email of its own at the time its sender wanted. Owner alerts are left
    out. So are messages a person or a playbook's `cancel_on` withdrew, since no fatigue
    rule decides those."""
    for r in msgs:
        if r["recipient"] or not is_mail(r) or r["status"] == Status.CANCELLED:
            continue
        if r["kind"] == MessageKind.RECORDED:
            weeks.add(r["customer_id"], r["sent_at"])
        else:
            weeks.add(r["customer_id"], r["send_after"])
    return weeks


def everything_count(msgs: Iterable[Row], start: datetime, end: datetime) -> int:
    """How many emails sending everything would have sent in the period: every submitted
    message (playbooks' check-ins included, owner alerts and withdrawn messages not) as an
    email of its own."""
    return sum(
        1
        for r in msgs
        if r["kind"] == MessageKind.SUBMITTED
        and is_mail(r)
        and not r["recipient"]
        and r["status"] != Status.CANCELLED
        and r["send_after"] is not None
        and start <= r["send_after"] < end
    )


def redundant_ids(msgs: Iterable[Row]) -> set[str]:
    """Submitted, non-transactional messages on the same topic as an email a person wrote
    (recorded, human) to the same customer within the 14 days before it may go."""
    msgs = list(msgs)
    written: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for r in msgs:
        if (
            r["kind"] == MessageKind.RECORDED
            and r["human"]
            and r["topic"]
            and r["sent_at"]
            and not r["planned"]
        ):
            written[r["customer_id"], r["topic"]].append(r["sent_at"])
    out = set()
    for r in msgs:
        if r["kind"] != MessageKind.SUBMITTED or r["transactional"] or not r["topic"]:
            continue
        times = written.get((r["customer_id"], r["topic"]), ())
        if any(r["send_after"] - REDUNDANT_WITHIN <= t <= r["send_after"] for t in times):
            out.add(r["id"])
    return out


#: a moment as the engine's reasons write it (" at Thu 26 Nov 07:00 PST"), left out of labels
_MOMENT = re.compile(r"( at)? (Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d\d \w{3} \d\d:\d\d( [A-Z+\-0-9]+)?")


def lost_label(status: str, rule: str | None, reason: str) -> str:
    """`status: rule` for a message that was not delivered. With no rule named, the gist of
    the engine's reason is used (an expiry with no slot in its send window, a playbook
    check-in cancelled by an event), with its moments and ids left out so that alike ones
    add up."""
    if rule:
        return f"{status}: {rule}"
    gist = _MOMENT.sub("", reason.split(";")[0])
    gist = re.sub(r"event \S+", "an event", gist)
    return f"{status}: {gist.strip() or '-'}"


def share(part: int, whole: int) -> float:
    """`part` of `whole`; all of nothing counts as all (no receipt due: every one on time)."""
    return part / whole if whole else 1.0


@dataclass
class Outcome:
    """The three figures over one period."""

    p50: float
    p95: float
    mean: float
    weeks: int  # the whole weeks the p50 and p95 are over
    transactional_on_time: int
    transactional: int
    distinct_delivered: int
    distinct: int
    redundant: int  # left out of `distinct`
    pending: int  # left out of `distinct` too: still on its way
    emails: int  # sent in the period to customers (alerts to account owners not counted)
    digests: int  # of them, those holding more than one message
    #: what became of the distinct content not delivered: "status: rule" -> category -> messages
    lost: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def on_time(self) -> float:
        return share(self.transactional_on_time, self.transactional)

    @property
    def delivered(self) -> float:
        return share(self.distinct_delivered, self.distinct)

    def figures(self) -> dict[str, Any]:
        """JSON-ready, the two shares included."""
        return {
            **asdict(self),
            "on_time": round(self.on_time, 4),
            "delivered": round(self.delivered, 4),
        }


def measure(
    msgs: Iterable[Row],
    sent: Iterable[Row],
    start: datetime,
    end: datetime,
    since: Mapping[str, datetime | None],
) -> Outcome:
    """The three figures for the period from `start` to `end`. `msgs` are the ledger's
    messages (those around the period will do). `sent` are the sent emails, including those
    sent after `end` for the period's messages. `since` says when each customer became one."""
    msgs, sent = list(msgs), list(sent)
    went: dict[str, datetime] = {}
    emails = digests = 0
    for e in sent:
        for mid in e["members"]:
            went[mid] = e["sent_at"]
        if start <= e["sent_at"] < end and not e["to_owner"]:
            emails += 1
            digests += len(e["members"]) > 1
    dist = with_the_rules(msgs, sent, Weeks(start, end, since)).distribution()

    on_time = transactional = 0
    redundant = redundant_ids(msgs)
    distinct = delivered = pending = left_out = 0
    lost: dict[str, Counter[str]] = defaultdict(Counter)
    for r in msgs:
        at = r["send_after"]
        if r["kind"] != MessageKind.SUBMITTED or at is None or not start <= at < end:
            continue
        if r["transactional"]:
            if r["status"] == Status.SUPPRESSED:
                continue  # its address hard-bounced: no fatigue rule ever holds one back
            sent_at = went.get(r["id"])
            if sent_at is None and r["status"] in PENDING and at + ON_TIME > end:
                continue  # not late yet: the period ended before its five minutes did
            transactional += 1
            on_time += sent_at is not None and sent_at - at <= ON_TIME
            continue
        if r["recipient"] is not None:
            continue
        if r["id"] in redundant:
            left_out += 1
            continue
        if r["id"] in went:
            delivered += 1
        elif r["status"] in PENDING:
            pending += 1
            continue
        else:
            lost[lost_label(r["status"], r["rule"], r["reason"])][r["category"] or "-"] += 1
        distinct += 1
    return Outcome(
        p50=dist["p50"],
        p95=dist["p95"],
        mean=dist["mean"],
        weeks=int((end - start) // WEEK),
        transactional_on_time=on_time,
        transactional=transactional,
        distinct_delivered=delivered,
        distinct=distinct,
        redundant=left_out,
        pending=pending,
        emails=emails,
        digests=digests,
        lost={
            label: dict(by.most_common())
            for label, by in sorted(lost.items(), key=lambda kv: -sum(kv[1].values()))
        },
    )


def holds(msgs: Iterable[Row], held_by: Mapping[str, Iterable[str]]) -> dict[str, dict[str, int]]:
    """For each hold rule, the messages it made wait (`held_by`: message -> the hold rules
    that held it) and what became of them: sent (alone or in a digest), expired (after
    the hold, which the expiry's decision names), still waiting or on their way, or
    something else (suppressed, cancelled, failed)."""
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for r in msgs:
        for rule in held_by.get(r["id"], ()):
            n = out[rule]
            n["held"] += 1
            status = r["status"]
            if status == Status.SENT:
                n["sent"] += 1
            elif status == Status.EXPIRED:
                n["expired"] += 1
            elif status in PENDING:
                n["waiting"] += 1
            else:
                n["other"] += 1
    keys = ("held", "sent", "expired", "waiting", "other")
    return {rule: {k: n[k] for k in keys} for rule, n in sorted(out.items())}
