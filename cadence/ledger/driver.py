"""Driver-level reads and writes for re-planning: SQL run on the DBAPI cursor (sqlite3 or
psycopg) of a SQLAlchemy connection, inside that connection's transaction.

Why not SQLAlchemy here: these are the paths that read and write rows by the thousand
(re-planning, claiming, recording a chunk), and SQLAlchemy's work per row (result and bind
processors for the UTC and JSON columns, `RowMapping`, each row's parameters) is then larger
than the database's own (figures: docs/performance.md). Everything else in the ledger goes
through SQLAlchemy.

The values are exactly those SQLAlchemy reads and writes through `tables.py`, which stays the
one description of the columns (each column's kind is taken from its SQLAlchemy type):

- times: aware UTC `datetime`s in and out. SQLite keeps them as naive UTC text in
  SQLAlchemy's format (`2026-11-23 12:00:00.000000`, always six digits of microseconds, so
  text order is time order); PostgreSQL as `timestamptz`.
- JSON: `json.dumps` text in (PostgreSQL's `json` type keeps that text as it is), parsed
  values out (by `json_loads`, on PostgreSQL through psycopg's own JSON loading).
- booleans: SQLite keeps 0/1 and gives `bool`s back through SQLAlchemy, so here too.

On PostgreSQL rows go in by `COPY` and are updated by one `UPDATE ... FROM unnest(...)`
statement (not a round trip and a statement per row); on SQLite, whose calls cost no round
trip, by the driver's own `executemany`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Boolean, Column, Integer, Table
from sqlalchemy.exc import DBAPIError

from cadence.ledger.tables import UTCDateTime

if TYPE_CHECKING:
    from sqlalchemy import Connection

Row = dict[str, Any]


def _kind(column: Column[Any]) -> str:
    if isinstance(column.type, UTCDateTime):
        return "time"
    if isinstance(column.type, JSON):
        return "json"
    if isinstance(column.type, Boolean):
        return "bool"
    if isinstance(column.type, Integer):
        return "int"
    return "text"


#: each (table, columns) a statement reads, with the kind of every column: asked for every
#: statement, and the column lists are a few fixed ones
_KINDS: dict[tuple[str, tuple[str, ...]], list[tuple[str, str]]] = {}


def _kinds(table: Table, columns: tuple[str, ...]) -> list[tuple[str, str]]:
    key = (table.name, columns)
    found = _KINDS.get(key)
    if found is None:
        found = _KINDS[key] = [(name, _kind(table.c[name])) for name in columns]
    return found


class Encoded(str):
    """A JSON value already encoded by `json.dumps`, written as it is (a value written to two
    tables is encoded once)."""

    __slots__ = ()


_decode = json.JSONDecoder().raw_decode


def json_loads(text: str | bytes) -> Any:
    """`json.loads`, less its wrapper (a third of its time on the small documents kept here):
    what the store wrote is `json.dumps` text, which starts with the document and ends with
    it; anything else goes to `json.loads`, which parses it or raises as it always did."""
    if isinstance(text, bytes):
        text = text.decode()
    if text == "{}":  # most messages' data, every undecided message's details
        return {}
    try:
        value, end = _decode(text)
    except ValueError:
        return json.loads(text)
    return value if end == len(text) else json.loads(text)


def sqlite_time(value: datetime) -> str:
    """An aware time as SQLAlchemy stores it on SQLite: naive UTC text, microseconds always
    written (`UTCDateTime`, then SQLite's `DATETIME` storage format)."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r} reached the store: a bug upstream")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def pg_time(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r} reached the store: a bug upstream")
    return value.astimezone(UTC)


class Driver:
    """The DBAPI cursor of one SQLAlchemy connection, with the two databases' differences:
    placeholders, id lists, and how each kind of value is kept."""

    def __init__(self, conn: Connection, *, memo: dict[Any, Any] | None = None) -> None:
        self.postgres = conn.dialect.name == "postgresql"
        # values converted from rows (`plan_reading._memoized`: customers, messages, history
        # emails), by table, one entry a row id with the row it came from: the same stored
        # values make the same value, so an entry serves every read while its row stays the
        # same. Given only for a ledger that stays small (a scratch copy, the demo's), whose
        # size bounds it; a daemon's would not
        self.memo = memo
        self._dbapi_error: type[Exception] = conn.dialect.loaded_dbapi.Error
        # the same instants recur in a batch (its decision time, send-window openings,
        # creation times): each is converted once per transaction, either way
        self._written: dict[datetime, Any] = {}
        self._read: dict[str, datetime] = {}
        raw: Any = conn.connection.dbapi_connection
        if self.postgres:
            from psycopg.types.json import set_json_loads

            # results in binary: psycopg's binary loaders cost about half as much as parsing
            # text, and give the same values
            self._cursor = raw.cursor(binary=True)
            set_json_loads(json_loads, self._cursor)  # this cursor only
        else:
            self._cursor = raw.cursor()

    # -- SQL ------------------------------------------------------------------------------

    def sql(self, text: str) -> str:
        """`?` placeholders, as written in this module's callers, in the driver's own style."""
        return text.replace("?", "%s") if self.postgres else text

    def in_ids(self, column: str, ids: Sequence[str]) -> tuple[str, list[Any]]:
        """`column IN (the ids)` and its parameters: one array parameter on PostgreSQL (the
        statement's text is the same for every batch, so psycopg prepares it once), a
        placeholder per id on SQLite (as SQLAlchemy expands `in_`)."""
        if self.postgres:
            return f"{column} = ANY(?)", [list(ids)]
        return f"{column} IN ({','.join('?' * len(ids))})", list(ids)

    def time(self, value: datetime) -> Any:
        """A time as a statement parameter (a comparison, a value written)."""
        found = self._written.get(value)
        if found is None:
            found = self._written[value] = (pg_time if self.postgres else sqlite_time)(value)
        return found

    @contextmanager
    def _errors(self, statement: str) -> Iterator[None]:
        """The driver's errors as SQLAlchemy's (`sqlalchemy.exc.OperationalError`, ...), the
        same exceptions the rest of the store raises."""
        try:
            yield
        except self._dbapi_error as exc:
            raise DBAPIError.instance(statement, None, exc, self._dbapi_error) from exc

    def execute(self, text: str, params: Sequence[Any]) -> None:
        """A statement whose rows, if any, are not wanted (a `DELETE`)."""
        statement = self.sql(text)
        with self._errors(statement):
            self._cursor.execute(statement, params)

    # -- reading --------------------------------------------------------------------------

    def fetch(self, text: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Rows as the driver gives them (no conversion)."""
        statement = self.sql(text)
        with self._errors(statement):
            self._cursor.execute(statement, params)
            return list(self._cursor.fetchall())

    def select(
        self, table: Table, columns: Sequence[str], where: str, params: Sequence[Any]
    ) -> list[Row]:
        """`SELECT columns FROM table WHERE ...`, each row a dict of the values SQLAlchemy
        would give for these columns."""
        text = f"SELECT {', '.join(columns)} FROM {table.name} WHERE {where}"
        return self.rows(table, columns, text, params)

    def rows(
        self, table: Table, columns: Sequence[str], text: str, params: Sequence[Any]
    ) -> list[Row]:
        """A statement whose result is `columns` of `table` (a `SELECT`, an `UPDATE ...
        RETURNING`), each row a dict of the values SQLAlchemy would give for them."""
        return self.converted(table, columns, self.fetch(text, params))

    def converted(
        self, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> list[Row]:
        """Raw rows of `columns` of `table`, each a dict of the values SQLAlchemy would give."""
        readers = [
            (name, reader)
            for name, kind in _kinds(table, tuple(columns))
            if (reader := self.reader(kind)) is not None
        ]
        out = []
        for raw in rows:
            row = dict(zip(columns, raw, strict=True))
            for name, read in readers:
                value = row[name]
                if value is not None:
                    row[name] = read(value)
            out.append(row)
        return out

    def reader(self, kind: str) -> Callable[[Any], Any] | None:
        """What turns a stored value of this kind (not NULL) into SQLAlchemy's value; None
        where the driver already gives it."""
        if self.postgres:
            return _pg_time_out if kind == "time" else None
        if kind == "time":
            return self._sqlite_time
        if kind == "json":
            return json_loads
        if kind == "bool":
            return bool
        return None

    def _sqlite_time(self, text: str) -> datetime:
        found = self._read.get(text)
        if found is None:
            found = self._read[text] = datetime.fromisoformat(text + "+00:00")
        return found

    # -- writing --------------------------------------------------------------------------

    def _prepare(
        self, table: Table, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]
    ) -> list[list[Any]]:
        """Rows of domain values (by column name) as the database keeps them, in `columns`
        order: times (NULL stays NULL) in the database's form, JSON as its text (`None`
        too, as SQLAlchemy's `JSON` writes it)."""
        kinds = [kind for _, kind in _kinds(table, tuple(columns))]
        times = [i for i, kind in enumerate(kinds) if kind == "time"]
        texts = [i for i, kind in enumerate(kinds) if kind == "json"]
        time = self.time
        out = []
        for row in rows:
            values = [row[c] for c in columns]
            for i in times:
                if values[i] is not None:
                    values[i] = time(values[i])
            for i in texts:
                if type(values[i]) is not Encoded:
                    values[i] = json.dumps(values[i])
            out.append(values)
        return out

    def insert(
        self, table: Table, rows: Sequence[Mapping[str, Any]], *, single: bool = False
    ) -> None:
        """Insert rows (each the same columns, by name) in one go, in that order. `single`:
        on SQLite too, one statement for (up to SQLITE_PARAMS values of) the rows (see
        `_parts`)."""
        if not rows:
            return
        columns = list(rows[0])
        values = self._prepare(table, columns, rows)
        names = ", ".join(columns)
        if self.postgres and len(values) <= FEW:
            # a few rows (a chunk's history): one round trip, where COPY takes two
            picks = ", ".join(_pg_value(table, n) for n in columns)
            statement = (
                f"INSERT INTO {table.name} ({names}) SELECT {picks} FROM {_pg_rows(table, columns)}"
            )
            with self._errors(statement):
                self._cursor.execute(statement, [list(c) for c in zip(*values, strict=True)])
            return
        if self.postgres:
            # binary COPY: about half the client's time of text COPY; a JSON column takes
            # its text as `text` (the binary form of `json` is its text)
            statement = f"COPY {table.name} ({names}) FROM STDIN (FORMAT BINARY)"
            with self._errors(statement), self._cursor.copy(statement) as copy:
                copy.set_types([_pg_type(table.c[n]) for n in columns])
                for row in values:
                    copy.write_row(row)
            return
        one = f"({', '.join('?' * len(columns))})"
        if single:
            for part in _parts(values, len(columns)):
                statement = (
                    f"INSERT INTO {table.name} ({names}) VALUES {', '.join([one] * len(part))}"
                )
                with self._errors(statement):
                    self._cursor.execute(statement, [v for r in part for v in r])
            return
        statement = f"INSERT INTO {table.name} ({names}) VALUES {one}"
        with self._errors(statement):
            self._cursor.executemany(statement, values)

    def update(
        self,
        table: Table,
        key: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        fixed: Mapping[str, Any] | None = None,
        single: bool = False,
        returning: Sequence[str] = (),
    ) -> list[Row]:
        """Set the columns each row names (the same in every row) of the row whose `key` it
        holds, and the `fixed` columns to the same value in every row, in one statement on
        PostgreSQL; with `single`, on SQLite too (`UPDATE ... FROM (VALUES ...)`, see
        `_parts`). A key appears once in `rows`. With `returning` (and `single` on SQLite),
        those columns of the rows updated, as `rows` gives them."""
        if not rows:
            return []
        columns = [c for c in rows[0] if c != key]
        values = self._prepare(table, [key, *columns], rows)
        fixed = fixed or {}
        (same,) = self._prepare(table, list(fixed), [fixed]) if fixed else [[]]
        constant = [f"{n} = ?" for n in fixed]
        if self.postgres:
            sets = ", ".join(
                [f"{n} = %s" for n in fixed] + [f"{n} = {_pg_value(table, n)}" for n in columns]
            )
            statement = (
                f"UPDATE {table.name} AS t SET {sets} FROM {_pg_rows(table, [key, *columns])} "
                f"WHERE t.{key} = v.{key}" + _returning("t", returning)
            )
            with self._errors(statement):
                self._cursor.execute(
                    statement, [*same, *(list(col) for col in zip(*values, strict=True))]
                )
                got = self._cursor.fetchall() if returning else []
            return self.converted(table, returning, got)
        if single:
            # SQLite names a VALUES list's columns column1, column2...: the key is column1
            sets = ", ".join(constant + [f"{n} = v.column{j}" for j, n in enumerate(columns, 2)])
            one = f"({', '.join('?' * (len(columns) + 1))})"
            out: list[Any] = []
            for part in _parts(values, len(columns) + 1):
                statement = (
                    f"UPDATE {table.name} SET {sets} FROM (VALUES {', '.join([one] * len(part))})"
                    f" AS v WHERE {table.name}.{key} = v.column1"
                    + _returning(table.name, returning)
                )
                with self._errors(statement):
                    self._cursor.execute(statement, [*same, *(x for v in part for x in v)])
                    if returning:
                        out += self._cursor.fetchall()
            return self.converted(table, returning, out)
        assert not returning, "RETURNING needs one statement: `single`"
        sets = ", ".join(constant + [f"{n} = ?" for n in columns])
        statement = f"UPDATE {table.name} SET {sets} WHERE {key} = ?"
        with self._errors(statement):
            self._cursor.executemany(statement, [[*same, *v[1:], v[0]] for v in values])
        return []


def _pg_rows(table: Table, names: Sequence[str]) -> str:
    """Rows sent to PostgreSQL as one array a column, read back as a table `v` of `names`:
    the arrays dumped in binary (`%b`), which psycopg builds at less cost than text."""
    arrays = ", ".join(f"CAST(%b AS {_pg_type(table.c[n])}[])" for n in names)
    return f"unnest({arrays}) AS v({', '.join(names)})"


def _pg_value(table: Table, name: str) -> str:
    """A column of `v` (`_pg_rows`) as its table keeps it: JSON travels as its text."""
    return f"v.{name}::json" if _kind(table.c[name]) == "json" else f"v.{name}"


def _returning(table: str, names: Sequence[str]) -> str:
    """A `RETURNING` clause for these columns of `table` (named: a `FROM` list may hold the
    same names), or nothing."""
    return f" RETURNING {', '.join(f'{table}.{n}' for n in names)}" if names else ""


#: rows a PostgreSQL insert sends as arrays in one statement; more go by `COPY`
FEW = 200

#: values bound to one SQLite statement at most (SQLite allows 32,766 since 3.32)
SQLITE_PARAMS = 30_000


def _parts(rows: list[list[Any]], width: int) -> Iterator[list[list[Any]]]:
    """Rows in runs that each fit one statement of `width` values a row.

    Why one statement on SQLite, for a caller that asks (`single`): the sqlite3 module gives
    up the GIL around every step of a statement, so an `executemany` gives it up and takes it
    back for each row; a caller with busy threads beside it (the dispatcher's sending
    threads) then waits for the GIL once a row, instead of once."""
    size = max(1, SQLITE_PARAMS // width)
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def _pg_type(column: Column[Any]) -> str:
    """The type a column's values travel in (`COPY`, `unnest`): JSON as its text (the text is
    what PostgreSQL's `json` keeps)."""
    return {"time": "timestamptz", "bool": "boolean", "int": "integer"}.get(_kind(column), "text")


def _pg_time_out(value: datetime) -> datetime:
    # psycopg answers in the session's zone (`Etc/UTC` as a ZoneInfo): `UTCDateTime` hands
    # out `datetime.UTC`, and so does this
    return value.astimezone(UTC)
