"""What every command module shares: the Typer application and its groups, the `--config`
option, and the few helpers that turn failures and times into what a command says (exit 1 for
invalid input or rules or a database that cannot be used, exit 2 for wrong usage)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from cadence.app import App

app = typer.Typer(
    name="cadence",
    help="One ledger for every role's customer mail: fatigue rules, digests, proactive check-ins.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
rules_app = typer.Typer(help="Rule files.", no_args_is_help=True)
customers_app = typer.Typer(help="Customers.", no_args_is_help=True)
messages_app = typer.Typer(help="Messages of every role.", no_args_is_help=True)
events_app = typer.Typer(help="Lifecycle events.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(rules_app, name="rules")
app.add_typer(customers_app, name="customers")
app.add_typer(messages_app, name="messages")
app.add_typer(events_app, name="events")


@dataclass
class _Session:
    config: Path | None = None
    #: the App `get_app` made: a failure of its database names that database
    app: App | None = None


_session = _Session()

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="cadence.yaml to use (else $CADENCE_CONFIG, else ./cadence.yaml)"
    ),
]


@app.callback()
def _main(config: ConfigOption = None) -> None:
    _session.config = config


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


@contextmanager
def errors() -> Iterator[None]:
    """Known failures become their message and exit 1 (invalid input or rules, a database
    that cannot be reached or used)."""
    from cadence.app import NotReady
    from cadence.config import ConfigError
    from cadence.ingest import SourceError
    from cadence.rules import RuleErrors

    try:
        yield
    except RuleErrors as exc:
        fail("\n".join(str(e) for e in exc.errors))
    except (ConfigError, NotReady, SourceError) as exc:
        fail(f"error: {exc}")
    except Exception as exc:
        problem = database_problem(exc)
        if problem is None:
            raise
        fail(f"error: {problem}")


def database_problem(exc: BaseException) -> str | None:
    """The one line for a database that cannot be reached, opened or used (the server down, a
    password refused, a folder missing, a file that is not a database), or None when `exc` is
    something else: a bug keeps its traceback.

    The database layer is looked for among the loaded modules: a command that never loaded
    SQLAlchemy cannot have failed in it, and importing it here would slow every command."""
    db = sys.modules.get("cadence.ledger.db")
    sa = sys.modules.get("sqlalchemy.exc")
    if db is not None and isinstance(exc, db.HalfMade | db.UnsupportedDatabase):
        return str(exc)
    if sa is None or _session.app is None:
        return None
    settings = _session.app.settings
    # DatabaseError itself, not its kinds (a constraint broken, a query wrong): SQLite's "file
    # is not a database" comes as one
    if isinstance(exc, sa.OperationalError | sa.InterfaceError) or type(exc) is sa.DatabaseError:
        from cadence.ledger.db import describe_failure

        config = str(settings.source) if settings.source else "cadence.yaml"
        return describe_failure(settings.database_url, exc, config)
    return None


def get_app() -> App:
    from cadence.app import open_app

    with errors():
        _session.app = open_app(_session.config)
        return _session.app


def parse_time(text: str | None, option: str) -> datetime | None:
    """An ISO 8601 time with an offset; anything else is wrong usage (exit 2)."""
    if text is None:
        return None
    from cadence.instants import DateOnly, NoOffset, parse_instant

    try:
        return parse_instant(text)
    except DateOnly as e:
        fail(f"error: {option} {text!r} is a date, not a time; write e.g. {e.suggestion}", 2)
    except NoOffset:
        fail(f"error: {option} {text!r} has no UTC offset; write e.g. {text}Z", 2)
    except ValueError:
        fail(f"error: {option} {text!r} is not an ISO 8601 time", 2)


def now_or(text: str | None, option: str = "--now") -> datetime:
    from cadence.clock import utcnow

    return parse_time(text, option) or utcnow()
