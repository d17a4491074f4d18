"""customers: engagement (opens, clicks, replies and when the last of each came)

Rules may read how a customer answers our mail (`customer.last_open_at`, `customer.opens`):
the provider's `opened`/`clicked` events and `replied` events keep it, as they keep
reachability. Existing customers start with none; events already applied are not replayed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("engagement", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("engagement")
