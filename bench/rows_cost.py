"""What reading a ledger row costs, by the way it is read: the driver's tuples (how the bulk
paths read), SQLAlchemy Core rows, SQLModel instances through a `Session`, and SQLModel
instances made from rows already read (`model_validate`). 20,000 message rows in a SQLite file
of its own; best of three, microseconds per row.

    python -m bench.rows_cost
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select
from sqlmodel import Session, SQLModel
from sqlmodel import select as select_rows

from cadence.ledger.tables import MessageRow, messages

ROWS = 20_000


def _best(fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(3):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times) / ROWS * 1e6


def main() -> None:
    path = Path(tempfile.mkdtemp()) / "rows.db"
    engine = create_engine(f"sqlite:///{path}")
    SQLModel.metadata.create_all(engine)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            messages.insert(),
            [
                {
                    "id": f"m-{i}",
                    "customer_id": f"c-{i % 1000}",
                    "kind": "submitted",
                    "role": "success",
                    "category": "onboarding",
                    "topic": "t",
                    "send_after": now,
                    "status": "pending",
                    "digest": "d",
                    "created_at": now,
                    "updated_at": now,
                    "data": {},
                    "template": "x",
                }
                for i in range(ROWS)
            ],
        )
    raw = sqlite3.connect(path)
    columns = ", ".join(c.name for c in messages.columns)

    def core() -> list[Any]:
        with engine.connect() as conn:
            return list(conn.execute(select(messages)).fetchall())

    def orm() -> list[MessageRow]:
        with Session(engine) as session:
            return list(session.exec(select_rows(MessageRow)).all())

    read = core()
    print(f"python -m bench.rows_cost  ({ROWS:,} message rows, SQLite)")
    for what, fn in (
        (
            "driver tuples (sqlite3)",
            lambda: raw.execute(f"SELECT {columns} FROM messages").fetchall(),
        ),
        ("SQLAlchemy Core rows", core),
        ("SQLModel instances through a Session", orm),
        (
            "SQLModel instances made from rows already read",
            lambda: [MessageRow.model_validate(dict(r._mapping)) for r in read],
        ),
    ):
        print(f"{what}: {_best(fn):.1f} us/row")


if __name__ == "__main__":
    main()
