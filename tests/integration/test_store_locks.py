"""Writers of many customers take their rows in one order (id order) on PostgreSQL, so two of
them at once wait for each other rather than deadlock: new rules marking every customer
dirty while a sweep marks some of them."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime

import pytest

from cadence.ledger.common import mark_dirty
from cadence.ledger.db import upgrade
from cadence.ledger.ledger import Ledger
from cadence.model import Customer

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
pytestmark = pytest.mark.postgres


def test_marking_everyone_and_some_at_once_does_not_deadlock(pg_url: str) -> None:
    upgrade(pg_url)
    a, b = Ledger(pg_url), Ledger(pg_url)
    try:
        ids = [f"c-{i:05d}" for i in range(3000)]
        # stored in an order other than the ids': the table's own order is not id order
        shuffled = ids[:]
        random.Random(7).shuffle(shuffled)
        for part in range(0, len(shuffled), 500):
            a.ingest.upsert_customers(
                [(Customer(c, f"{c}@x.test", c), "d") for c in shuffled[part : part + 500]],
                now=NOW,
            )
        errors: list[BaseException] = []
        start = threading.Barrier(2)

        def everyone() -> None:
            start.wait()
            try:
                for _ in range(15):
                    a.planning.mark_all_dirty()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        def some() -> None:
            rnd = random.Random(11)
            start.wait()
            try:
                for _ in range(15):
                    with b.engine.begin() as conn:
                        mark_dirty(conn, rnd.sample(ids, 1500))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=f) for f in (everyone, some)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
    finally:
        a.close()
        b.close()
