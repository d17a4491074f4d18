"""Planning against the store: re-plan the customers whose inputs changed.

Cost grows with the work that arrived: only customers marked dirty (or whose next planned
moment has come) are read, planned and written back, a batch at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from cadence.engine import plan_account
from cadence.engine.limits import counts_for_account

#: candidates offered per customer a PostgreSQL batch plans: room for this many daemons'
#: batches in flight at once before one of them finds nothing left to take
SHARED_CANDIDATES = 4
#: looks again in a row after another daemon planned all of a batch's candidates first
OVERTAKEN_ROUNDS = 3

if TYPE_CHECKING:
    from cadence.ledger.ledger import Ledger
    from cadence.rules.model import Rules


def plan_due(
    store: Ledger, rules: Rules, now: datetime, default_timezone: str, *, batch: int = 500
) -> int:
    """Re-plan every customer that needs it; returns how many were planned."""
    return plan_some(store, rules, now, default_timezone, batch=batch)[0]


def plan_some(
    store: Ledger,
    rules: Rules,
    now: datetime,
    default_timezone: str,
    *,
    batch: int = 500,
    keep_planning: Callable[[], bool] = lambda: True,
) -> tuple[int, bool]:
    """Re-plan customers that need it, a batch at a time, while `keep_planning()` holds
    (asked after each batch; customers with transactional mail waiting come first). Returns
    how many were planned and whether some were left for later.

    A daemon stops after a while so that it sends between batches: a customer left dirty
    has none of its emails claimed until it is planned again (`claim_due`), so stopping
    early delays that customer's mail but never sends it on a stale plan."""
    from cadence import metrics

    # A planned customer leaves the queue (not dirty, next_plan_at > now: the planner promises
    # it); one that is back at once was marked dirty again meanwhile and is rightly planned
    # again. Only the last batch is remembered, not every id of the pass (at a million
    # customers that set alone would be ~100 MB): customers another daemon has locked come
    # back unplanned, and must end the pass rather than spin on it.
    planned = 0
    previous: set[str] = set()
    account_mail = partial(counts_for_account, rules=rules) if rules.plans_accounts else None
    # On PostgreSQL several daemons may plan at once: each is offered more candidates than
    # it plans and takes the first that no other daemon holds (`Planning.batch`), so they
    # share a backlog. SQLite has one writer at a time: the candidates are the batch.
    asked = batch * SHARED_CANDIDATES if store.is_postgres else batch
    overtaken_rounds = 0
    while True:
        found = store.planning.customers_to_plan(now, asked)
        ids = [i for i in found if i not in previous]
        if not ids:
            return planned, False
        # read, plan and write back in one transaction: the ledger reads the batch in the
        # groups it is planned in, the engine plans each group, the ledger writes the plans
        with store.planning.batch(
            ids,
            now,
            rules.lookback(),
            account_mail=account_mail,
            limit=batch if store.is_postgres else None,
        ) as read:
            plans = [
                p
                for group in read.groups
                for p in plan_account(group, rules, now, default_timezone)
            ]
            read.save(plans, rules.version)
            full, overtaken = read.full, read.overtaken
        previous = {p.customer_id for p in plans}
        for p in plans:
            metrics.record_decisions(p.decisions)
        planned += len(plans)
        # nothing planned: every candidate is held by another daemon planning it (theirs),
        # or was planned by one since the look; then look again, a few times at most
        overtaken_rounds = overtaken_rounds + 1 if not plans and overtaken else 0
        if not plans and (not overtaken or overtaken_rounds > OVERTAKEN_ROUNDS):
            return planned, False
        if len(found) < asked and not full and not overtaken:
            # every customer that needed a plan was in this batch: what is left was marked
            # meanwhile, and the next pass plans it (no second look for nothing each pass)
            return planned, False
        if not keep_planning():
            return planned, True
