"""What `cadence report` reads: the period's messages, sent emails, engagement events and the
customers' time zones, as plain rows (the figures are computed above the store)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

from cadence.ledger.tables import customers, emails, events, messages
from cadence.model import EmailStatus

if TYPE_CHECKING:
    from sqlalchemy import Engine

ENGAGEMENT = ("opened", "clicked", "replied", "unsubscribed", "spam_reported")


@dataclass(frozen=True, slots=True)
class ReportRows:
    messages: list[
        dict[str, Any]
    ]  # id, customer_id, kind, role, category, topic, playbook, status, rule, at
    emails: list[dict[str, Any]]  # id, customer_id, members, sent_at, role, category
    engagement: list[dict[str, Any]]  # email_id, type
    zones: dict[str, str | None]  # customer -> time zone


class ReportQueries:
    engine: Engine

    def report_rows(
        self, since: datetime, until: datetime, account: str | None = None
    ) -> ReportRows:
        with self.engine.connect() as conn:
            people = select(customers.c.id, customers.c.timezone)
            if account is not None:
                people = people.where(customers.c.account == account)
            zones = {r.id: r.timezone for r in conn.execute(people)}
            in_scope = list(zones)
            msg_rows = []
            m = messages.c
            for i in range(0, len(in_scope), 500):
                part = in_scope[i : i + 500]
                msg_rows += [
                    dict(r)
                    for r in conn.execute(
                        select(
                            m.id,
                            m.customer_id,
                            m.kind,
                            m.role,
                            m.category,
                            m.topic,
                            m.playbook,
                            m.status,
                            m.rule,
                            m.send_after,
                            m.sent_at,
                            m.recipient,
                        ).where(
                            m.customer_id.in_(part),
                            or_(
                                m.send_after.between(since, until), m.sent_at.between(since, until)
                            ),
                        )
                    ).mappings()
                ]
            e = emails.c
            email_rows = [
                dict(r)
                for r in conn.execute(
                    select(
                        e.id, e.customer_id, e.members, e.sent_at, e.role, e.category, e.to_owner
                    ).where(e.status == EmailStatus.SENT, e.sent_at.between(since, until))
                ).mappings()
                if r["customer_id"] in zones
            ]
            engaged = [
                {"email_id": (r.data or {}).get("email_id"), "type": r.type}
                for r in conn.execute(
                    select(events.c.type, events.c.data).where(
                        events.c.type.in_(ENGAGEMENT), events.c.at.between(since, until)
                    )
                )
            ]
        for row in msg_rows:
            row["at"] = row["sent_at"] if row["kind"] == "recorded" else row["send_after"]
        return ReportRows(msg_rows, email_rows, [x for x in engaged if x["email_id"]], zones)
