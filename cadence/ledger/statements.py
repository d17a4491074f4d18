"""Pieces that statements all over the store are built from: ids in chunks short enough
for any database, an upsert in the connection's own dialect, and a time an aggregate read
back without its zone. They take an open connection, so each runs in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import Connection, Table

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql import Insert as PgInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert

T = TypeVar("T")
CHUNK = 500  # ids per IN (...) list: well under every database's parameter limit


def chunks(ids: Sequence[T], size: int = CHUNK) -> Iterable[Sequence[T]]:
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def aware(t: datetime | None) -> datetime | None:
    """A time read outside the UTC column type (an aggregate on SQLite) made aware UTC."""
    if t is None:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def upsert(conn: Connection, table: Table) -> PgInsert | SqliteInsert:
    """An INSERT that takes `ON CONFLICT` clauses, in the connection's own dialect (SQLite and
    PostgreSQL spell them alike, but SQLAlchemy has one construct for each)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)
