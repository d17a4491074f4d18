"""Column lists shared by the driver-level reads and writes: what `convert` needs to build a
value, and a row of decision history. One list each, so a column added to a table and to
`convert` is read everywhere it is needed."""

from __future__ import annotations

#: what `convert.customer` needs (re-planning reads `last_contact` beside it)
CUSTOMER = (
    "id",
    "email",
    "name",
    "timezone",
    "account",
    "attributes",
    "created_at",
    "unsubscribed_all",
    "unsubscribed_categories",
    "hard_bounced",
    "soft_bounces",
    "spam_reported",
    "attributes_at",
)
#: what an email is, beyond its id, customer, time and status: what the planner decides
EMAIL_CONTENT = (
    "members",
    "role",
    "category",
    "transactional",
    "merge_rule",
    "template",
    "to_owner",
)
#: what `convert.message` needs
MESSAGE = (
    "id",
    "customer_id",
    "role",
    "kind",
    "category",
    "topic",
    "template",
    "data",
    "subject",
    "body_text",
    "body_html",
    "sender_email",
    "sender_name",
    "human",
    "transactional",
    "priority",
    "send_after",
    "expires_at",
    "sent_at",
    "playbook",
    "origin",
    "recipient",
    "created_at",
)
#: a row of decision history (the id is the table's own)
HISTORY = (
    "message_id",
    "customer_id",
    "decided_at",
    "status",
    "send_at",
    "email_id",
    "rule",
    "reason",
    "details",
    "rules_version",
)
