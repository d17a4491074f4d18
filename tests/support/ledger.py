"""Writing crafted plans into a ledger the way a pass does: the customers' batch read
(`Planning.batch`), the plans saved in its transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from cadence.ledger.ledger import Ledger
from cadence.model import Plan


def save_plans(store: Ledger, plans: Sequence[Plan], rules_version: str) -> None:
    if not plans:
        return
    now = min(p.as_of for p in plans)
    ids = list(dict.fromkeys(p.customer_id for p in plans))
    with store.planning.batch(ids, now, timedelta(days=1)) as batch:
        batch.save(plans, rules_version)
