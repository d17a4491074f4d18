"""Several daemons on one PostgreSQL share the planning backlog.

What must hold: a daemon whose first candidates another daemon is planning takes the next
customers instead of ending its pass with nothing done; no customer is planned by two
daemons at once; what one daemon holds, the other leaves alone.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cadence.flows.planning import plan_some
from cadence.ledger.db import upgrade
from cadence.ledger.ledger import Ledger
from cadence.model import Customer, Message
from cadence.rules import load_rules
from cadence.rules.model import EMPTY_RULES

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
M = timedelta(minutes=1)
pytestmark = pytest.mark.postgres


def _backlog(store: Ledger, n: int, accounts: int = 0) -> list[str]:
    """`n` customers (in `accounts` accounts, if any), each with a message to plan."""
    ids = [f"c-{i:04d}" for i in range(n)]
    store.ingest.upsert_customers(
        [
            (Customer(c, f"{c}@x.test", c, account=f"a-{i % accounts}" if accounts else None), "d")
            for i, c in enumerate(ids)
        ],
        now=NOW,
    )
    store.ingest.add_messages(
        [(Message(f"m-{c}", c, "success", subject="s", send_after=NOW + M), "d") for c in ids],
        now=NOW,
    )
    return ids


def _dirty(store: Ledger) -> list[str]:
    return store.planning.customers_to_plan(NOW, 10_000)


def test_a_daemon_takes_the_next_customers_while_another_plans_the_first(pg_url: str) -> None:
    upgrade(pg_url)
    a, b = Ledger(pg_url), Ledger(pg_url)
    try:
        ids = _backlog(a, 120)
        first = ids[:20]
        # daemon A is in the middle of planning the first batch: its locks are held
        with a.planning.batch(first, NOW, timedelta(days=1), limit=20) as held:
            assert sorted(c.customer.id for g in held.groups for c in g) == first
            planned, more = plan_some(b, EMPTY_RULES, NOW, "UTC", batch=20)
            # B planned everything A does not hold, and left A's alone
            assert (planned, more) == (100, False)
            assert sorted(_dirty(b)) == first
    finally:
        a.close()
        b.close()


def test_an_account_is_taken_whole_or_left(pg_url: str, tmp_path: Path) -> None:
    """With an account limit, an account's customers are planned together: a daemon that
    cannot hold all of them plans none of them."""
    (tmp_path / "limits.yaml").write_text(
        "limits:\n  - name: per-account\n    scope: account\n    max: 2\n    per: 7d\n"
    )
    rules = load_rules(tmp_path)
    assert rules.plans_accounts
    upgrade(pg_url)
    a, b = Ledger(pg_url), Ledger(pg_url)
    try:
        _backlog(a, 40, accounts=4)  # c-0000, c-0004, ... are account a-0
        # A holds one customer of account a-0 (as if planning it)
        with a.planning.batch(["c-0000"], NOW, timedelta(days=1), limit=1):
            plan_some(b, rules, NOW, "UTC", batch=7)
            left = _dirty(b)
        assert sorted(left) == [f"c-{i:04d}" for i in range(0, 40, 4)]
    finally:
        a.close()
        b.close()


def test_three_daemons_plan_a_backlog_together(pg_url: str) -> None:
    upgrade(pg_url)
    stores = [Ledger(pg_url) for _ in range(3)]
    try:
        ids = _backlog(stores[0], 600)
        counts = [0, 0, 0]
        start = threading.Barrier(3)

        def daemon(k: int) -> None:
            start.wait()
            counts[k] = plan_some(stores[k], EMPTY_RULES, NOW, "UTC", batch=10)[0]

        threads = [threading.Thread(target=daemon, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert _dirty(stores[0]) == []
        assert sum(counts) == len(ids)  # nobody planned twice
        assert all(n > 0 for n in counts), counts  # and each took part
    finally:
        for s in stores:
            s.close()
