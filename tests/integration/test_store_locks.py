"""Writers of many customers take their rows in one order (id order) on PostgreSQL, so two of
them at once wait for each other rather than deadlock: new rules marking every customer
dirty while a sweep marks some of them."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime

import pytest

from cadence.ledger.attention import mark_dirty
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


def test_a_deadlock_is_said_as_work_to_run_again_not_a_database_out_of_reach(
    pg_url: str,
) -> None:
    """Two transactions taking two rows in opposite orders: PostgreSQL rolls one back. What
    a command then prints says so, not that the database cannot be reached."""
    from sqlalchemy import exc as sa_exc
    from sqlalchemy import text

    from cadence.ledger.db import describe_failure

    upgrade(pg_url)
    a, b = Ledger(pg_url), Ledger(pg_url)
    try:
        a.ingest.upsert_customers(
            [(Customer(c, f"{c}@x.test", c), "d") for c in ("c-1", "c-2")], now=NOW
        )
        both = threading.Barrier(2)
        failures: list[sa_exc.DBAPIError] = []

        def take(store: Ledger, first: str, second: str) -> None:
            try:
                with store.engine.begin() as conn:
                    lock = "SELECT id FROM customers WHERE id = :id FOR UPDATE"
                    conn.execute(text(lock), {"id": first})
                    both.wait()
                    conn.execute(text(lock), {"id": second})
            except sa_exc.DBAPIError as exc:
                failures.append(exc)

        threads = [
            threading.Thread(target=take, args=(a, "c-1", "c-2")),
            threading.Thread(target=take, args=(b, "c-2", "c-1")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        (failure,) = failures
        said = describe_failure(pg_url, failure)
        assert "deadlock detected" in said and "run it again" in said
        assert "cannot reach" not in said
    finally:
        a.close()
        b.close()
