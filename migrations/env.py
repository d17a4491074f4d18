"""Alembic environment: a connection (`config.attributes["connection"]`) or URL
(`config.attributes["url"]`) comes from cadence (`cadence db upgrade`), else $CADENCE_DATABASE_URL
or `sqlalchemy.url` for a developer running `alembic` by hand."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

import cadence.ledger.tables  # noqa: F401 - registers the tables on SQLModel.metadata
from cadence.ledger.db import make_engine

config = context.config
target_metadata = SQLModel.metadata


def _url() -> str:
    return (
        config.attributes.get("url")
        or os.environ.get("CADENCE_DATABASE_URL")
        or config.get_main_option("sqlalchemy.url")
        or "sqlite:///cadence.db"
    )


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode copies the table instead
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given: Connection | None = config.attributes.get("connection")
    if given is not None:  # a caller's open connection (tests, an embedding application)
        _migrate(given)
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as connection:
            _migrate(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
