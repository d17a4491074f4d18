"""Engines and the schema: SQLite (WAL) as the embedded default, PostgreSQL through psycopg 3;
Alembic brings either to the newest migration."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from sqlalchemy import Engine, create_engine, event, inspect, text

SchemaState = Literal["empty", "current", "outdated"]


class UnsupportedDatabase(ValueError):
    pass


#: a database in memory, the scratch ledger's (`store.scratch`): one connection that every
#: user of the engine shares, or each would see a database of its own
IN_MEMORY = "sqlite://"


def make_engine(url: str) -> Engine:
    if url == IN_MEMORY:
        from sqlalchemy.pool import StaticPool

        return create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # WAL: readers (preview) never block the daemon's writes, and the other way round
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA cache_size=-16384")
            # checkpoint the WAL every ~40 MB rather than SQLite's 4 MB: a checkpoint runs in
            # the committing connection and syncs the database file, and the dispatcher
            # commits a few times per chunk. A crash replays at most that much WAL.
            cursor.execute("PRAGMA wal_autocheckpoint=10000")
            cursor.close()

        return engine
    if url.startswith("postgresql+psycopg://"):
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    if url.startswith("postgresql"):
        raise UnsupportedDatabase(
            f"{url.split('://')[0]}: use postgresql+psycopg://user@host/db (psycopg 3)"
        )
    raise UnsupportedDatabase(
        f"unsupported database_url {url.split('://')[0]}://...: use sqlite:///cadence.db or "
        "postgresql+psycopg://user@host/db"
    )


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    from cadence.shipped import shipped

    cfg = Config()
    cfg.set_main_option("script_location", str(shipped("cadence.migrations")))
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str) -> None:
    """Bring the database at `url` to the newest migration."""
    from alembic import command

    command.upgrade(_alembic_config(url), "head")


#: the newest migration; a test checks it against Alembic's own view of `migrations/`, so every
#: command can tell whether the schema is current without loading Alembic (start-up time)
HEAD = "0004"


@cache
def alembic_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config("sqlite://")).get_current_head()


def schema_state(url: str, engine: Engine | None = None) -> SchemaState:
    own = engine is None
    engine = engine or make_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return "empty"
            current = conn.scalar(text("SELECT version_num FROM alembic_version"))
    finally:
        if own:
            engine.dispose()
    return "current" if current == HEAD else "outdated"
