"""messages: a partial index of the transactional mail not yet planned

A receipt or a ticket reply must leave within a second of its submission, even while the daemon
works through a burst of other mail: its customer is planned before anyone else. This index
holds only such messages (a handful at any moment), so finding them costs the same whatever
the size of the ledger, and an idle daemon can ask for them several times a second.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 23:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_messages_unplanned_transactional"
# written out, not imported from cadence.ledger.tables: a migration keeps the schema of its day
UNPLANNED = {
    "sqlite": "transactional = 1 AND final = 0 AND rules_version IS NULL",
    "postgresql": "transactional = true AND final = false AND rules_version IS NULL",
}


def upgrade() -> None:
    op.create_index(
        NAME,
        "messages",
        ["customer_id"],
        unique=False,
        sqlite_where=sa.text(UNPLANNED["sqlite"]),
        postgresql_where=sa.text(UNPLANNED["postgresql"]),
    )


def downgrade() -> None:
    op.drop_index(NAME, table_name="messages")
