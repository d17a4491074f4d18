"""Engines and the schema: SQLite (WAL) as the embedded default, PostgreSQL through psycopg 3;
Alembic brings either to the newest migration, one process at a time (`migrate`)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text

#: `partial`: tables of ours and no migration recorded, what a first migration that was not
#: one transaction left when its process died (cadence before `migrate` could)
SchemaState = Literal["empty", "current", "outdated", "partial"]

#: the tables the migrations make
OWN_TABLES = frozenset({"customers", "messages", "emails", "events", "decisions", "meta"})
#: every state `cadence db upgrade` brings to the newest migration
UPGRADABLE: tuple[SchemaState, ...] = ("empty", "outdated", "partial")
#: the key of the PostgreSQL advisory lock a migration holds ("cadence" in ASCII)
MIGRATION_LOCK = 0x63616465_6E6365
#: how long a PostgreSQL connection attempt may take before it is an error (libpq waits for
#: ever by default, and an unreachable host would hang every command for minutes)
PG_CONNECT_TIMEOUT = 10


class HalfMade(Exception):
    """A half-made schema whose tables hold rows: starting it again would lose them."""


class UnsupportedDatabase(ValueError):
    pass


#: a database in memory, the scratch ledger's (`store.scratch`): one connection that every
#: user of the engine shares, or each would see a database of its own
IN_MEMORY = "sqlite://"


def make_engine(url: str) -> Engine:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise UnsupportedDatabase(f"database_url {safe_url(url)} is not a URL: {exc}") from None
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
    if url.startswith(("postgresql://", "postgres://")):
        # no driver named: psycopg 3, the one cadence installs (SQLAlchemy would take
        # psycopg2, which it does not)
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("postgresql+psycopg://"):
        # a connect_timeout in the URL wins (connect_args would override it)
        timeout = {} if "connect_timeout=" in url else {"connect_timeout": PG_CONNECT_TIMEOUT}
        return create_engine(
            url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args=timeout
        )
    if url.startswith("postgresql"):
        raise UnsupportedDatabase(
            f"{url.split('://')[0]}: cadence speaks to PostgreSQL through psycopg 3 only; use "
            "postgresql://user@host/db (or postgresql+psycopg://)"
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
    """Bring the database at `url` to the newest migration (see `migrate`)."""
    migrate(url, UPGRADABLE)


#: the newest migration; a test checks it against Alembic's own view of `migrations/`, so every
#: command can tell whether the schema is current without loading Alembic (start-up time)
HEAD = "0007"


@cache
def alembic_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config("sqlite://")).get_current_head()


def schema_state(url: str, engine: Engine | None = None) -> SchemaState:
    own = engine is None
    engine = engine or make_engine(url)
    try:
        with engine.connect() as conn:
            return _state(conn)
    finally:
        if own:
            engine.dispose()


def _state(conn: Connection) -> SchemaState:
    tables = set(inspect(conn).get_table_names())
    version = None
    if "alembic_version" in tables:
        version = conn.scalar(text("SELECT version_num FROM alembic_version"))
    if version is None:
        return "partial" if tables & OWN_TABLES else "empty"
    return "current" if version == HEAD else "outdated"


def migrate(url: str, when: Collection[SchemaState]) -> SchemaState:
    """The schema's state, after bringing it to the newest migration if it was in `when`.

    Several processes (or threads) may start together on a new database: looking at the
    schema and migrating it are one step under a lock each of them takes, so one migrates and
    the others then find it current. On SQLite the lock is the database's own write lock,
    taken by BEGIN IMMEDIATE (the others wait up to the busy timeout, 30 s); on PostgreSQL an
    advisory lock held by the transaction. The migration runs in that same transaction, so a
    process that dies halfway leaves the database as it found it, never half made.

    A `partial` schema in `when` is started again when none of its tables holds a row
    (nothing is lost); `HalfMade` is raised when one does. The state is first read without
    the lock: a current schema, the usual case, never waits for the daemon's writes."""
    state = schema_state(url)
    if state not in when:
        return state
    engine = _migration_engine(url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            state = _state(conn)  # again, under the lock: another process may have migrated
            if state not in when:
                return state
            if state == "partial":
                _clear_half_made(conn, url)
            _run_alembic(conn, url)
            return _state(conn)
    finally:
        engine.dispose()


def _migration_engine(url: str) -> Engine:
    """An engine whose transactions hold the lock `migrate` needs from their first statement.

    On SQLite the driver's own transaction handling begins a transaction only before a data
    change, so DDL ran outside any (the half-made schemas); with it off, a transaction begins
    where SQLAlchemy begins one, IMMEDIATE: the write lock at once, not at the first write."""
    engine = make_engine(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _driver_hands_off(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@dataclass(frozen=True, slots=True)
class Migration:
    revision: str
    down_revision: str | None
    title: str  # the first line of its docstring


class RevisionError(ValueError):
    """A downgrade that cannot be done: a revision this cadence does not know, or one that is
    not older than the database's."""


def migrations() -> list[Migration]:
    """Every migration this cadence ships, newest first."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(_alembic_config("sqlite://"))
    out = []
    for script in scripts.walk_revisions():
        down = script.down_revision
        title = (script.doc or "").strip().splitlines()
        out.append(
            Migration(
                script.revision, down if isinstance(down, str) else None, title[0] if title else ""
            )
        )
    return out


def schema_revision(url: str) -> tuple[SchemaState, str | None]:
    """The schema's state and the migration the database records (None: none recorded)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return _state(conn), _version(conn)
    finally:
        engine.dispose()


def _version(conn: Connection) -> str | None:
    if "alembic_version" not in inspect(conn).get_table_names():
        return None
    version: str | None = conn.scalar(text("SELECT version_num FROM alembic_version"))
    return version


def upgrade_from(url: str) -> tuple[str | None, str | None]:
    """`upgrade`, and the revisions before and after it (equal: there was nothing to do)."""
    _, before = schema_revision(url)
    upgrade(url)
    return before, schema_revision(url)[1]


def downgrade(url: str, revision: str) -> tuple[str, str | None]:
    """Take the database back to `revision` (Alembic's downgrade: what the later migrations
    added is dropped, data in it included), under `migrate`'s lock and in one transaction.
    The revisions before and after; equal when the database was at `revision` already.
    `RevisionError`: an unknown revision, no migration recorded, or `revision` is newer."""
    known = [m.revision for m in migrations()]  # newest first
    if revision not in known:
        raise RevisionError(
            f"no migration {revision!r}: one of {', '.join(known)} (see `cadence db history`)"
        )
    engine = _migration_engine(url)
    if engine.dialect.name == "sqlite":
        # SQLite's way to change a table (copy, drop, rename: Alembic's batch mode) needs the
        # foreign keys off, set before the transaction begins; they are checked before commit
        @event.listens_for(engine, "connect")
        def _foreign_keys_off(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA foreign_keys=OFF")

    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            before = _version(conn)
            if before is None:
                raise RevisionError("the database records no migration: nothing to downgrade")
            if before not in known:
                raise RevisionError(f"the database is at {before}, a migration this cadence lacks")
            if known.index(revision) < known.index(before):
                raise RevisionError(
                    f"{revision} is newer than the database's {before}: use `cadence db upgrade`"
                )
            if revision != before:
                from alembic import command

                cfg = _alembic_config(url)
                cfg.attributes["connection"] = conn
                command.downgrade(cfg, revision)
                if conn.dialect.name == "sqlite":
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").first()
                    if broken is not None:
                        raise RevisionError(f"the downgrade would break a foreign key: {broken}")
            return before, _version(conn)
    finally:
        engine.dispose()


def _run_alembic(conn: Connection, url: str) -> None:
    """Alembic on `conn`, inside the caller's transaction (env.py takes the connection; a
    connection already in a transaction is left to its owner to commit)."""
    from alembic import command

    cfg = _alembic_config(url)
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


def _clear_half_made(conn: Connection, url: str) -> None:
    """Drop what a first migration left, when no table of it holds a row."""
    names = [
        name
        for name in inspect(conn).get_table_names()
        if name in OWN_TABLES or name == "alembic_version" or name.startswith("_alembic_tmp_")
    ]
    holding = [n for n in names if conn.scalar(text(f'SELECT 1 FROM "{n}" LIMIT 1')) is not None]
    if holding:
        raise HalfMade(
            f"the database at {safe_url(url)} holds tables a first migration left half made, "
            f"and {', '.join(sorted(holding))} hold rows: cadence will not drop them. Keep a "
            "copy, then drop those tables (or point database_url at a new database)"
        )
    cascade = " CASCADE" if conn.dialect.name == "postgresql" else ""
    for name in names:
        conn.execute(text(f'DROP TABLE IF EXISTS "{name}"{cascade}'))


def safe_url(url: str) -> str:
    """The URL without a password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}@{host}"
    return url


def describe_failure(url: str, exc: BaseException, config: str = "cadence.yaml") -> str:
    """One line for a database that cannot be reached or used: which one (no password), why,
    and where that is set. A transaction that lost a conflict with another one (a deadlock, a
    serialization failure) is said as such: the database is fine, the work was rolled back
    whole, and running it again is the answer."""
    state = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if state in ("40P01", "40001"):
        said = str(getattr(exc, "orig", exc)).splitlines()[0].strip()
        return (
            f"the database at {safe_url(url)} rolled this work back ({said}): it met another "
            "transaction at the same rows; nothing was half-written, run it again"
        )
    reason = _reason(url, exc)
    verb = "reach" if url.startswith("postgresql") else "use"
    return (
        f"cannot {verb} the database at {safe_url(url)}: {reason}; "
        f"check database_url in {config} (or CADENCE_DATABASE_URL)"
    )


def _reason(url: str, exc: BaseException) -> str:
    """What the driver said, in the words a person can act on."""
    said = str(getattr(exc, "orig", None) or exc).strip()
    first = said.splitlines()[0].strip() if said else type(exc).__name__
    if url.startswith("sqlite"):
        from pathlib import Path

        path = Path(url.split("///", 1)[-1] or "cadence.db")
        if "unable to open database file" in first:
            if not path.parent.is_dir():
                return f"the folder {path.parent} does not exist"
            return f"{path} cannot be opened or created (permissions?)"
        if "file is not a database" in first:
            return f"{path} is not a SQLite database"
        if "database is locked" in first:
            return "the database stayed locked by another process for 30 s"
        return first
    # psycopg: 'connection failed: connection to server at "h", port 1 failed: Connection
    # refused' and 'FATAL:  password authentication failed for user "x"'
    first = first.rsplit(" failed: ", 1)[-1].removeprefix("FATAL:").strip()
    return first[:1].lower() + first[1:]
