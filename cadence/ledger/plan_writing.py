"""Writing plans back: the emails, each changed decision (and its history), the customers'
next moment.

Through `Driver` (see there for why), a fixed handful of statements per batch whatever its
size: rows go in by `COPY` and updates by one `UPDATE ... FROM unnest(...)` on PostgreSQL,
by the driver's `executemany` on SQLite.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from cadence.ledger import convert
from cadence.ledger.columns import EMAIL_CONTENT, HISTORY
from cadence.ledger.common import aware, chunks
from cadence.ledger.driver import Driver, Encoded, Row
from cadence.ledger.plan_reading import current_decisions
from cadence.ledger.tables import customers, decisions, emails, messages
from cadence.model import Email, EmailStatus, Plan

log = logging.getLogger(__name__)

#: every column of a new email, in the order of the rows built below
EMAIL = (
    "id",
    "customer_id",
    "send_at",
    "status",
    *EMAIL_CONTENT,
    "lease_owner",
    "lease_until",
    "attempts",
    "provider_id",
    "error",
    "sent_at",
    "created_at",
    "updated_at",
    "rules_version",
)
#: what a plan says of an email, compared with (and set on) a planned email's row
PLANNED = ("send_at", *EMAIL_CONTENT, "rules_version")
#: what a changed decision sets on its message (the message's id first)
DECIDED = (
    "status",
    "rule",
    "reason",
    "send_at",
    "email_id",
    "details",
    "rules_version",
    "final",
    "decided_at",
)


def save_plans(
    db: Driver,
    plans: Sequence[Plan],
    rules_version: str,
    current: Mapping[str, Row] | None = None,
) -> None:
    """Write the plans: each changed decision, the emails, the customers' next moment.
    `current` holds the decided messages' rows as read in this transaction (read here
    when not given)."""
    if not plans:
        return
    _write_emails(db, plans, rules_version)
    if current is None:
        current = current_decisions(db, [d.message_id for p in plans for d in p.decisions])
    history: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    for p in plans:
        for d in p.decisions:
            old = current.get(d.message_id)
            if old is None:
                continue
            details = convert.details(d)
            verdict_changed = (
                old["status"] != str(d.status)
                or aware(old["send_at"]) != d.send_at
                or old["email_id"] != d.email_id
                or old["rule"] != d.rule
                or old["reason"] != d.reason
            )
            changed = (
                verdict_changed
                or old["final"] != d.final
                or old["rules_version"] != d.rules_version
                or (old["details"] or {}) != details
            )
            if not changed:
                continue
            text = Encoded(json.dumps(details))
            updates.append(
                (
                    d.message_id,
                    str(d.status),
                    d.rule,
                    d.reason,
                    d.send_at,
                    d.email_id,
                    text,
                    d.rules_version,
                    d.final,
                    p.as_of,
                )
            )
            if verdict_changed:
                history.append(
                    (
                        d.message_id,
                        p.customer_id,
                        p.as_of,
                        str(d.status),
                        d.send_at,
                        d.email_id,
                        d.rule,
                        d.reason,
                        text,
                        d.rules_version,
                    )
                )
    # a plan that changed nothing writes nothing here
    db.update(messages, "id", DECIDED, updates)
    db.insert(decisions, HISTORY, history)
    db.update(
        customers,
        "id",
        ("dirty", "next_plan_at"),
        [(p.customer_id, False, p.next_plan_at) for p in plans],
    )


def _write_emails(db: Driver, plans: Sequence[Plan], rules_version: str) -> None:
    """The customers' planned emails become the plans' emails. An email the old plan had
    too (the same id: the same members) keeps its row, changed where the plan changed it:
    its attempts so far count on (a temporary failure puts the email back on the plan, and
    a row made anew would be tried for ever), and an unchanged plan, the usual re-plan,
    writes no email at all."""
    where, params = db.in_ids("customer_id", [p.customer_id for p in plans])
    old = {
        r["id"]: r
        for r in db.select(
            emails,
            ("id", "customer_id", *PLANNED),
            f"{where} AND status = ?",
            [*params, EmailStatus.PLANNED.value],
        )
    }
    changed: list[tuple[Any, ...]] = []
    new: list[tuple[Plan, Email]] = []
    for p in plans:
        for e in p.emails:
            row = old.pop(e.id, None)
            if row is None:
                new.append((p, e))
                continue
            values = (e.send_at, *_content(e), rules_version)
            if (aware(row["send_at"]), *(row[c] for c in PLANNED[1:])) != values:
                changed.append((e.id, *values, p.as_of))
    if old:  # what the new plans no longer propose
        # by customer too: SQLite, with no statistics, would otherwise find them through
        # (status, send_at), reading every planned email of every customer
        by_customer, by_id = db.in_ids(
            "customer_id", sorted({r["customer_id"] for r in old.values()})
        )
        for part in chunks(list(old)):
            where, params = db.in_ids("id", part)
            db.execute(
                f"DELETE FROM emails WHERE {by_customer} AND status = ? AND {where}",
                [*by_id, EmailStatus.PLANNED.value, *params],
            )
    db.update(emails, "id", (*PLANNED, "updated_at"), changed)
    _insert_emails(db, new, rules_version)


def _insert_emails(db: Driver, new: Sequence[tuple[Plan, Email]], rules_version: str) -> None:
    if not new:
        return
    taken: set[str] = set()
    for part in chunks([e.id for _, e in new]):
        where, params = db.in_ids("id", part)
        taken.update(i for (i,) in db.fetch(f"SELECT id FROM emails WHERE {where}", params))
    rows = []
    for p, e in new:
        if e.id in taken:
            # a claimed/sent email keeps its row: ids derive from the members, so
            # this is the plan re-proposing what is already on its way
            log.warning(
                "plan for %s proposes email %s, which exists and is no longer "
                "planned: kept as it is",
                p.customer_id,
                e.id,
            )
            continue
        rows.append(
            (
                e.id,
                e.customer_id,
                e.send_at,
                EmailStatus.PLANNED.value,
                *_content(e),
                None,
                None,
                0,
                None,
                None,
                None,
                p.as_of,
                p.as_of,
                rules_version,
            )
        )
    db.insert(emails, EMAIL, rows)


def _content(e: Email) -> tuple[Any, ...]:
    """An email's `EMAIL_CONTENT` columns, as its row keeps them."""
    return (
        list(e.members),
        e.role,
        e.category,
        e.transactional,
        e.merge_rule,
        e.template,
        e.to_owner,
    )
