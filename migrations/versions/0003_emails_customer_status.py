"""emails: one index on (customer_id, status) instead of customer_id alone

Planning a batch deletes the customers' planned emails and reads their sent ones. With only
`customer_id` and `(status, send_at)` indexed and no statistics (a new SQLite database has
none), SQLite chose the status index for `customer_id IN (...) AND status = 'planned'`, and
so read every planned email in the ledger for each batch: planning a million customers slowed
to ~150 a second. With both columns in one index the lookup is exact whatever the statistics.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 04:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("emails", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_emails_customer_id"))
        batch_op.create_index("ix_emails_customer_status", ["customer_id", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("emails", schema=None) as batch_op:
        batch_op.drop_index("ix_emails_customer_status")
        batch_op.create_index(batch_op.f("ix_emails_customer_id"), ["customer_id"], unique=False)
