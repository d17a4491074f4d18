"""Writing plans back: the emails, each changed decision (and its history), the customers'
next moment.

Through `Driver` (see there for why), a fixed handful of statements per batch whatever its
size: rows go in by `COPY` and updates by one `UPDATE ... FROM unnest(...)` on PostgreSQL,
by the driver's `executemany` on SQLite. Rows by name, from the codec in `convert`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from cadence.ledger import convert
from cadence.ledger.columns import EMAIL_CONTENT
from cadence.ledger.driver import Driver, Encoded, Row
from cadence.ledger.plan_reading import current_decisions
from cadence.ledger.statements import aware, chunks
from cadence.ledger.tables import customers, decisions, emails, messages
from cadence.model import Email, EmailStatus, Plan

log = logging.getLogger(__name__)

#: what a plan says of an email, compared with (and set on) a planned email's row
PLANNED = ("send_at", *EMAIL_CONTENT, "rules_version")


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
    history: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
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
            text = Encoded(json.dumps(details))  # written to both tables, encoded once
            updates.append(
                {
                    "id": d.message_id,
                    "status": str(d.status),
                    "rule": d.rule,
                    "reason": d.reason,
                    "send_at": d.send_at,
                    "email_id": d.email_id,
                    "details": text,
                    "rules_version": d.rules_version,
                    "final": d.final,
                    "decided_at": p.as_of,
                }
            )
            if verdict_changed:
                history.append(
                    convert.history_row(
                        message_id=d.message_id,
                        customer_id=p.customer_id,
                        decided_at=p.as_of,
                        status=d.status,
                        send_at=d.send_at,
                        email_id=d.email_id,
                        rule=d.rule,
                        reason=d.reason,
                        details=text,
                        rules_version=d.rules_version,
                    )
                )
    # a plan that changed nothing writes nothing here
    db.update(messages, "id", updates)
    db.insert(decisions, history)
    db.update(
        customers,
        "id",
        [{"id": p.customer_id, "dirty": False, "next_plan_at": p.next_plan_at} for p in plans],
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
    changed: list[dict[str, Any]] = []
    new: list[tuple[Plan, Email]] = []
    for p in plans:
        for e in p.emails:
            row = old.pop(e.id, None)
            if row is None:
                new.append((p, e))
                continue
            values = {**convert.email_values(e), "rules_version": rules_version}
            if any((aware(row[c]) if c == "send_at" else row[c]) != values[c] for c in PLANNED):
                changed.append({"id": e.id, **values, "updated_at": p.as_of})
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
    db.update(emails, "id", changed)
    _insert_emails(db, new, rules_version)


def _insert_emails(db: Driver, new: Sequence[tuple[Plan, Email]], rules_version: str) -> None:
    if not new:
        return
    taken: set[str] = set()
    for part in chunks([e.id for _, e in new]):
        where, params = db.in_ids("id", part)
        taken.update(i for (i,) in db.fetch(f"SELECT id FROM emails WHERE {where}", params))
    rows: list[dict[str, Any]] = []
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
            {
                "id": e.id,
                "customer_id": e.customer_id,
                "status": EmailStatus.PLANNED.value,
                **convert.email_values(e),
                "lease_owner": None,
                "lease_until": None,
                "attempts": 0,
                "provider_id": None,
                "error": None,
                "sent_at": None,
                "created_at": p.as_of,
                "updated_at": p.as_of,
                "rules_version": rules_version,
            }
        )
    db.insert(emails, rows)
