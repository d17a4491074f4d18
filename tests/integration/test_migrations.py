"""The migrations build exactly the schema the models declare, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import cadence.ledger.tables  # noqa: F401 - registers the tables
from cadence.ledger.db import make_engine, schema_state, upgrade


def test_migrations_match_models(db_url: str) -> None:
    assert schema_state(db_url) == "empty"
    upgrade(db_url)
    assert schema_state(db_url) == "current"
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_upgrade_twice_is_harmless(db_url: str) -> None:
    upgrade(db_url)
    upgrade(db_url)
    assert schema_state(db_url) == "current"


def test_head_constant_is_alembics_head() -> None:
    from cadence.ledger.db import HEAD, alembic_head

    assert alembic_head() == HEAD  # a new migration must move HEAD too


def test_upgrade_on_a_connection_given_by_the_caller(db_url: str) -> None:
    """env.py uses a connection handed over in `config.attributes` (an embedding
    application's own transaction) instead of opening one."""
    from alembic import command

    from cadence.ledger.db import _alembic_config

    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            cfg = _alembic_config(db_url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    finally:
        engine.dispose()
    assert schema_state(db_url) == "current"


def test_a_scratch_copy_starts_empty_at_the_models_schema_each_its_own() -> None:
    """Scratch ledgers (what simulate and preview run on) are copied from an empty ledger
    made once a process: each has exactly the models' schema, starts empty, and what one
    holds the next does not."""
    from sqlalchemy import text

    from cadence.ledger.scratch import scratch_store

    first, second = scratch_store(), scratch_store()
    try:
        for store in (first, second):
            with store.engine.connect() as conn:
                context = MigrationContext.configure(conn, opts={"compare_type": True})
                assert compare_metadata(context, SQLModel.metadata) == []
                assert conn.execute(text("SELECT count(*) FROM meta")).scalar_one() == 0
        first.reads.set_meta("k", "v")
        assert first.reads.get_meta("k") == "v"
        assert second.reads.get_meta("k") is None
        third = scratch_store()
        assert third.reads.get_meta("k") is None
        third.close()
    finally:
        first.close()
        second.close()
