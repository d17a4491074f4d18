"""What the dispatcher's write after each completion costs: record one email the provider took
and mark the next one `sending` (`Sending.mark_sent_and_sending`), in one transaction, as a
daemon does once per request when the provider answers one request at a time.

    python -m bench.completion [--db sqlite,postgresql] [--emails 1500]

On a fresh ledger of its own (a temporary SQLite file, or a PostgreSQL database made and
dropped for the run): one message per customer, planned and claimed, then one write per
email. Prints the time per write and, per write, each statement the driver ran and its time,
so a change to the write shows in its statements as well as in its total.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.__main__ import _drop, _pg_database
from cadence.config import SendgridSettings
from cadence.flows.planning import plan_due
from cadence.ledger import driver
from cadence.ledger.db import upgrade
from cadence.ledger.ledger import Ledger
from cadence.model import Customer, Message
from cadence.rules.loader import load_rules

#: no window, no hold: every email is due at once
RULES = "limits:\n  - name: one-a-week\n    max: 1\n    per: 7d\n"
#: requests on the wire at once: the SendGrid transport's default concurrency
PLACES = SendgridSettings().concurrency


@contextmanager
def _database(db: str) -> Iterator[str]:
    if db == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/completion.db"
        return
    url, name = _pg_database()
    try:
        yield url
    finally:
        _drop(name)


class TimedCursor:
    """A DBAPI cursor that times each statement it runs (a proxy for the rest)."""

    def __init__(self, cursor: Any, seen: dict[str, list[float]]) -> None:
        self._cursor, self._seen = cursor, seen

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def execute(self, statement: str, params: Any = None) -> Any:
        started = time.perf_counter()
        try:
            return self._cursor.execute(statement, params)
        finally:
            self._took(statement, started)

    def executemany(self, statement: str, params: Any) -> Any:
        started = time.perf_counter()
        try:
            return self._cursor.executemany(statement, params)
        finally:
            self._took(statement, started)

    @contextmanager
    def copy(self, statement: str) -> Iterator[Any]:
        started = time.perf_counter()
        try:
            with self._cursor.copy(statement) as copy:
                yield copy
        finally:
            self._took(statement, started)

    def _took(self, statement: str, started: float) -> None:
        text = re.sub(r"(%s|\?)(, ?(%s|\?))+", "...", statement)
        self._seen[text[:100]].append(time.perf_counter() - started)


@contextmanager
def _counted() -> Iterator[dict[str, list[float]]]:
    """Each statement the driver runs, by its text (lists of placeholders folded), with its
    time: every driver made meanwhile runs on a timed cursor."""
    seen: dict[str, list[float]] = defaultdict(list)
    original = driver.Driver.__init__

    def init(self: driver.Driver, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._cursor = TimedCursor(self._cursor, seen)

    driver.Driver.__init__ = init  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        driver.Driver.__init__ = original  # type: ignore[method-assign]


def measure(db: str, count: int) -> None:
    with _database(db) as url, tempfile.TemporaryDirectory() as rules_dir:
        upgrade(url)
        (Path(rules_dir) / "limits.yaml").write_text(RULES)
        rules = load_rules(Path(rules_dir))
        store = Ledger(url)
        try:
            now = datetime.now(UTC) - timedelta(minutes=1)
            store.ingest.upsert_customers(
                [
                    (Customer(f"c-{i:05}", f"c{i}@acme.test", "C", "UTC", None, {}), "bench")
                    for i in range(count)
                ],
                now=now,
            )
            store.ingest.add_messages(
                [
                    (
                        Message(
                            f"m-{i:05}",
                            f"c-{i:05}",
                            "sales",
                            category="offer",
                            subject="Hello",
                            body_text=f"An offer for customer {i}",
                            send_after=now,
                        ),
                        "bench",
                    )
                    for i in range(count)
                ],
                now=now,
            )
            at = datetime.now(UTC)
            plan_due(store, rules, at, "UTC")
            ids = [
                c.email.id for c in store.sending.claim_due(at, "bench", timedelta(hours=1), count)
            ]
            store.sending.mark_sending_many(ids[:PLACES], "bench", at)
            writes = len(ids) - PLACES
            with _counted() as seen:
                started = time.perf_counter()
                for i in range(PLACES, len(ids)):
                    store.sending.mark_sent_and_sending(
                        [(ids[i - PLACES], f"p-{i}")], at, [ids[i]], "bench"
                    )
                took = time.perf_counter() - started
        finally:
            store.close()
    print(f"{db}: {writes} writes, {1000 * took / writes:.2f} ms each")
    for text, times in sorted(seen.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {1000 * sum(times) / writes:6.3f} ms  {len(times) / writes:4.1f} a write  {text}")
    statements = sum(len(t) for t in seen.values()) / writes
    print(f"  {statements:.1f} statements a write")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.completion", description=__doc__)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--emails", type=int, default=1500)
    args = parser.parse_args()
    for db in args.db.split(","):
        measure(db, args.emails)


if __name__ == "__main__":
    main()
