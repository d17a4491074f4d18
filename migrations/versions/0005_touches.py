"""messages: touches of every channel (`channel`, `summary`, `planned`)

The ledger kept only email. A CSM's call, a rep's meeting, a support chat are touches too: they
count against limits and redundancy, and a call booked for tomorrow counts then, as a planned
email does. Existing rows are emails, done.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 08:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("channel", sa.String(), nullable=False, server_default="email")
        )
        batch_op.add_column(sa.Column("summary", sa.String(), nullable=True))
        batch_op.add_column(
            sa.Column("planned", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("planned")
        batch_op.drop_column("summary")
        batch_op.drop_column("channel")
