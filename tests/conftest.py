"""Fixtures shared by the test tiers.

`db_url` runs a test on SQLite and on PostgreSQL, each time on a fresh database of its own.
Without a PostgreSQL server the PostgreSQL half skips with the reason, except in CI
(`CI` set), where a missing server is a failure, never a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ADMIN = os.environ.get("CADENCE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_admin():  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)


def _pg_available() -> str | None:
    try:
        with _pg_admin():
            return None
    except Exception as exc:  # noqa: BLE001 - any reason to not reach it is reported
        return f"PostgreSQL not reachable at {PG_ADMIN}: {exc}"


@pytest.fixture(scope="session")
def pg_reason() -> str | None:
    return _pg_available()


def fresh_pg_database(pg_reason: str | None) -> Iterator[str]:
    if pg_reason is not None:
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{pg_reason} (CI must run the PostgreSQL tests)")
        pytest.skip(pg_reason)
    name = f"cadence_t_{uuid.uuid4().hex[:12]}"
    with _pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with _pg_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, pg_reason: str | None) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cadence.db'}"
    else:
        yield from fresh_pg_database(pg_reason)


@pytest.fixture
def pg_url(pg_reason: str | None) -> Iterator[str]:
    """A fresh PostgreSQL database only (multi-daemon tests)."""
    yield from fresh_pg_database(pg_reason)


@pytest.fixture
def store(db_url: str):  # type: ignore[no-untyped-def]
    from cadence.ledger.db import upgrade
    from cadence.ledger.ledger import Ledger

    upgrade(db_url)
    s = Ledger(db_url)
    try:
        yield s
    finally:
        s.close()
