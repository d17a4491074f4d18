"""Column lists the driver-level reads share, derived from the tables (`tables.py` stays the
one description of the columns): a column added to a table is read wherever its value is."""

from __future__ import annotations

from sqlalchemy import Table

from cadence.ledger.tables import customers, decisions, emails, events, messages


def all_but(table: Table, *left_out: str) -> tuple[str, ...]:
    """The table's columns, in its order, without those named (which must be its own)."""
    names = tuple(c.name for c in table.columns)
    unknown = set(left_out) - set(names)
    if unknown:
        raise ValueError(f"{table.name} has no column {', '.join(sorted(unknown))}")
    return tuple(n for n in names if n not in left_out)


def only(table: Table, *names: str) -> tuple[str, ...]:
    """These columns of the table, as named (each must be its own)."""
    unknown = set(names) - {c.name for c in table.columns}
    if unknown:
        raise ValueError(f"{table.name} has no column {', '.join(sorted(unknown))}")
    return names


#: a message's current decision, kept on its row (its history is in `decisions`)
DECISION = (
    "status",
    "rule",
    "reason",
    "send_at",
    "email_id",
    "details",
    "rules_version",
    "final",
    "decided_at",
    "in_flight",
    "cancelled_by",
)
#: the customer as `convert.customer` reads it: all but the ledger's own bookkeeping
CUSTOMER = all_but(customers, "updated_at", "digest", "last_contact", "dirty", "next_plan_at")
#: the message as `convert.message` reads it: all but its decision and the digest
MESSAGE = all_but(messages, "digest", *DECISION)
#: a row of decision history (the id is the table's own)
HISTORY = all_but(decisions, "id")
#: what an email is, beyond its id, customer, time and status: what the planner decides
EMAIL_CONTENT = only(
    emails, "members", "role", "category", "transactional", "merge_rule", "template", "to_owner"
)
#: the event as `convert.event` reads it
EVENT = only(events, "id", "customer_id", "type", "at", "data", "attributes")
