"""What `cadence report` reads: a period's messages and the decisions of hold rules on them,
the emails sent, engagement events, and the customers' time zones and start dates, all as
plain rows. The figures are computed above the ledger, in `cadence.report`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select

from cadence.ledger.statements import chunks
from cadence.ledger.tables import customers, decisions, emails, events, messages
from cadence.model import EmailStatus, MessageKind, Status
from cadence.progress import Progress, quiet

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

#: the events `cadence report` counts as engagement
ENGAGEMENT = ("opened", "clicked", "replied", "unsubscribed", "spam_reported")


@dataclass(frozen=True, slots=True)
class ReportRows:
    #: id, customer_id, kind, role, category, topic, playbook, status, rule, reason, at,
    #: channel, planned (a touch booked elsewhere, not yet done), send_after, sent_at,
    #: recipient, human, transactional
    messages: list[dict[str, Any]]
    emails: list[dict[str, Any]]  # sent in the period: id, customer_id, members, sent_at, ...
    engagement: list[dict[str, Any]]  # email_id, type
    zones: dict[str, str | None]  # customer -> time zone
    #: when each customer entered the ledger (first imported)
    since: dict[str, datetime]
    #: the emails sent in the period, and those sent after it that carry its messages
    sent: list[dict[str, Any]]
    #: message -> the hold rules that made it wait
    held_by: dict[str, list[str]]
    #: what people wrote to the customers from `written_from` up to the period (the same
    #: columns as `messages`): a message of the period on one of its topics may repeat it
    written_before: list[dict[str, Any]]


def report_rows(
    engine: Engine,
    since: datetime,
    until: datetime,
    account: str | None = None,
    written_from: datetime | None = None,
    progress: Progress = quiet,
) -> ReportRows:
    """The rows of the period from `since` up to, not including, `until` (a week's report
    ending at Monday midnight leaves out an email sent at that moment, which the next week's
    report counts). Progress counts customers whose messages were read (they are read twice:
    the period's, then those written before it) and the two reads between."""
    with engine.connect() as conn:
        people = select(customers.c.id, customers.c.timezone, customers.c.created_at)
        if account is not None:
            people = people.where(customers.c.account == account)
        found = list(conn.execute(people))
        zones = {r.id: r.timezone for r in found}
        joined = {r.id: r.created_at for r in found}
        total = 2 * len(zones) + 2
        progress(0, total)
        msg_rows = _messages(conn, list(zones), since, until, lambda n: progress(n, total))
        e = emails.c
        columns = (e.id, e.customer_id, e.members, e.sent_at, e.role, e.category, e.to_owner)
        email_rows = [
            dict(r)
            for r in conn.execute(
                select(*columns).where(
                    e.status == EmailStatus.SENT, e.sent_at >= since, e.sent_at < until
                )
            ).mappings()
            if r["customer_id"] in zones
        ]
        # a message of the period may have gone after it ends: the figures count it as
        # delivered, and the time it went says whether a transactional one was on time
        known = {r["id"] for r in email_rows}
        later_ids = sorted(
            {
                m["email_id"]
                for m in msg_rows
                if m["status"] == Status.SENT and m["email_id"] and m["email_id"] not in known
            }
        )
        later = [
            dict(r)
            for part in chunks(later_ids)
            for r in conn.execute(
                select(*columns).where(e.status == EmailStatus.SENT, e.id.in_(part))
            ).mappings()
        ]
        engaged = [
            {"email_id": (r.data or {}).get("email_id"), "type": r.type}
            for r in conn.execute(
                select(events.c.type, events.c.data).where(
                    events.c.type.in_(ENGAGEMENT), events.c.at >= since, events.c.at < until
                )
            )
        ]
        progress(len(zones) + 1, total)
        held_by = _held_by(conn, [m["id"] for m in msg_rows])
        progress(len(zones) + 2, total)
        read_before = _messages(
            conn,
            list(zones),
            written_from or since,
            since,
            lambda n: progress(len(zones) + 2 + n, total),
        )
        before = [
            m
            for m in read_before
            if m["kind"] == MessageKind.RECORDED and m["human"] and m["topic"]
        ]
    for row in msg_rows + before:
        row["at"] = row["sent_at"] if row["kind"] == MessageKind.RECORDED else row["send_after"]
    return ReportRows(
        messages=msg_rows,
        emails=email_rows,
        engagement=[x for x in engaged if x["email_id"]],
        zones=zones,
        since=joined,
        sent=email_rows + later,
        held_by=held_by,
        written_before=before,
    )


def _messages(
    conn: Connection,
    in_scope: list[str],
    since: datetime,
    until: datetime,
    read: Callable[[int], None],
) -> list[dict[str, Any]]:
    """The messages of these customers in the period; `read` told how many customers' are
    read so far, after each chunk."""
    m = messages.c
    out: list[dict[str, Any]] = []
    done = 0
    for part in chunks(in_scope):
        query = select(
            m.id,
            m.customer_id,
            m.kind,
            m.role,
            m.category,
            m.topic,
            m.playbook,
            m.status,
            m.rule,
            m.reason,
            m.email_id,
            m.send_after,
            m.sent_at,
            m.recipient,
            m.channel,
            m.planned,
            m.human,
            m.transactional,
        ).where(
            m.customer_id.in_(part),
            or_(
                and_(m.send_after >= since, m.send_after < until),
                and_(m.sent_at >= since, m.sent_at < until),
            ),
        )
        out += [dict(r) for r in conn.execute(query).mappings()]
        done += len(part)
        read(done)
    return out


def _held_by(conn: Connection, ids: list[str]) -> dict[str, list[str]]:
    """The hold rules that made each message wait. A hold rule's decision is the one
    deferral with no time yet: a limit that defers a message names the time it may go."""
    d = decisions.c
    out: dict[str, set[str]] = defaultdict(set)
    for part in chunks(ids):
        rows = conn.execute(
            select(d.message_id, d.rule).where(
                d.message_id.in_(part),
                d.status == Status.DEFERRED,
                d.send_at.is_(None),
                d.rule.is_not(None),
            )
        )
        for r in rows:
            out[r.message_id].add(r.rule)
    return {mid: sorted(rules) for mid, rules in out.items()}
