"""customers: max_per_week, the cap a customer chose for themselves

A customer who finds the mail too much can ask for at most N emails a week (their preference
page, or a CRM's `preferences_changed` event) instead of unsubscribing; the planner honours it
as a limit of their own across every role, transactional mail excepted.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 09:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_per_week", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("max_per_week")
