"""events: one index on (processed, at) instead of processed alone

A tick asks for the unprocessed events whose time has come, and for the earliest of them; with
`processed` alone indexed both read every unprocessed event, so an idle tick grew with the
events waiting in the future.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 02:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_processed"))
        batch_op.create_index("ix_events_processed_at", ["processed", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_processed_at")
        batch_op.create_index(batch_op.f("ix_events_processed"), ["processed"], unique=False)
