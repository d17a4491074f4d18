"""Alembic environment: the URL comes from cadence (`cadence db upgrade`), or from
`sqlalchemy.url` / $CADENCE_DATABASE_URL for a developer running `alembic` by hand."""

from __future__ import annotations

import os

from alembic import context
from sqlmodel import SQLModel

import cadence.store.tables  # noqa: F401 - registers the tables on SQLModel.metadata
from cadence.store.db import make_engine

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


def run_migrations_online() -> None:
    url = _url()
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=url.startswith("sqlite"),
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
