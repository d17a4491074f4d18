"""Two reads the inbound webhook needs that the ledger's `Reads` does not have yet: the
customers with an address, and emails by id.

They belong in `cadence.ledger.reads.Reads`, the only place that should speak SQL, and are
written as its methods are (SQLAlchemy Core on the ledger's own tables, rows turned into
model values by `convert`), so they can move there as they are; until then they live here,
beside their one caller, and read nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from cadence.ledger import convert
from cadence.ledger.common import chunks
from cadence.ledger.tables import customers, emails
from cadence.model import Customer, Email

if TYPE_CHECKING:
    from cadence.ledger.ledger import Ledger


def customers_with_email(store: Ledger, address: str) -> list[Customer]:
    """The customers whose address is `address`, ignoring case (as mail systems do), by id.
    Several customers may share one address (one person in two accounts)."""
    wanted = address.strip().lower()
    if not wanted:
        return []
    query = (
        select(customers).where(func.lower(customers.c.email) == wanted).order_by(customers.c.id)
    )
    with store.engine.connect() as conn:
        return [convert.customer(r) for r in conn.execute(query).mappings()]


def emails_by_id(store: Ledger, ids: Sequence[str]) -> dict[str, Email]:
    """The planned or sent emails with these ids; ids the ledger does not have are left out."""
    out: dict[str, Email] = {}
    with store.engine.connect() as conn:
        for part in chunks(sorted(set(ids))):
            rows = conn.execute(select(emails).where(emails.c.id.in_(part))).mappings()
            out.update({r["id"]: convert.email(r) for r in rows})
    return out
