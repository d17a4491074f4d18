"""A database that cannot be reached or used: every command, and the daemon, says so in one
line (which database, without its password; why; where that is set) and exits 1, with no
traceback (issue 20 (c); a refused connection used to print 149 lines)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import Cli, Result

PASSWORD = "s3cret-pw"
#: every command that uses the database, with arguments that get it as far as the database
COMMANDS: list[tuple[str, ...]] = [
    ("db", "status"),
    ("db", "upgrade"),
    ("run", "--once"),
    ("run",),
    ("preview", "c-17"),
    ("customers", "import", "samples/customers.jsonl"),
    ("messages", "submit", "samples/messages.jsonl"),
    ("messages", "record", "samples/recorded.jsonl"),
    ("messages", "cancel", "m-1"),
    ("events", "ingest", "samples/events.jsonl"),
    ("emails", "unconfirmed"),
    ("emails", "settle", "--sent", "e-1"),
    ("explain", "m-1"),
    ("report",),
    ("simulate", "--start", "2026-11-02T00:00:00Z", "--end", "2026-11-03T00:00:00Z"),
]
#: what a person most often gets wrong, on SQLite: these few commands cover the paths
SOME = [("db", "status"), ("db", "upgrade"), ("run", "--once"), ("run",), ("preview", "c-17")]


def with_database(cli: Cli, url: str) -> Cli:
    """A started folder (`cadence init`) whose cadence.yaml names `url`."""
    cli("init", ".")
    config = cli.cwd / "cadence.yaml"
    text = config.read_text()
    assert "database_url: sqlite:///cadence.db" in text
    config.write_text(text.replace("database_url: sqlite:///cadence.db", f"database_url: {url}"))
    # any free port: the daemon would otherwise fail first, on a port another test holds
    env = dict(cli.env, CADENCE_NO_DAEMON_PREVIEW="1", CADENCE_HTTP__LISTEN="127.0.0.1:0")
    return Cli(cli.cwd, env)


def run_all(cli: Cli, commands: list[tuple[str, ...]]) -> dict[tuple[str, ...], Result]:
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = pool.map(lambda args: cli(*args, check=False), commands)
        return dict(zip(commands, results, strict=True))


def assert_one_line(results: dict[tuple[str, ...], Result], expected: str) -> None:
    for args, r in results.items():
        said = f"cadence {' '.join(args)} exited {r.code}:\n{r.err}{r.out}"
        assert r.code == 1, said
        assert "Traceback" not in r.err + r.out, said
        assert PASSWORD not in r.err + r.out, said
        lines = [line for line in r.err.splitlines() if line.strip()]
        # the daemon logs its start before it opens the database: its error is the last line
        assert lines and lines[-1] == expected, said
        if args != ("run",):
            assert len(lines) == 1, said


def test_a_refused_connection_is_one_line_for_every_command(cli: Cli) -> None:
    url = f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:1/cadence"
    cli = with_database(cli, url)
    assert_one_line(
        run_all(cli, COMMANDS),
        "error: cannot reach the database at postgresql+psycopg://postgres@127.0.0.1:1/cadence:"
        " connection refused; check database_url in cadence.yaml "
        "(or CADENCE_DATABASE_URL)",
    )


def test_a_sqlite_file_in_a_folder_that_does_not_exist(cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "cadence.db"
    cli = with_database(cli, f"sqlite:///{missing}")
    assert_one_line(
        run_all(cli, SOME),
        f"error: cannot use the database at sqlite:///{missing}: the folder "
        f"{missing.parent} does not exist; check database_url in cadence.yaml "
        "(or CADENCE_DATABASE_URL)",
    )
    assert not missing.parent.exists()


def test_a_file_that_is_not_a_database(cli: Cli, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("these are my notes, not a database\n" * 100)
    cli = with_database(cli, f"sqlite:///{notes}")
    assert_one_line(
        run_all(cli, SOME),
        f"error: cannot use the database at sqlite:///{notes}: {notes} is not a SQLite "
        "database; check database_url in cadence.yaml (or CADENCE_DATABASE_URL)",
    )
    assert notes.read_text() == "these are my notes, not a database\n" * 100


@pytest.mark.postgres
@pytest.mark.parametrize("wrong", ["database", "role"])
def test_a_server_that_refuses_the_login_says_why(cli: Cli, pg_url: str, wrong: str) -> None:
    server, _ = pg_url.rsplit("/", 1)
    if wrong == "database":
        url = f"{server}/no_such_db_for_cadence"
    else:
        url = f"{server}/postgres".replace("postgres@", "no_such_role_for_cadence@", 1)
    cli = with_database(cli, url)
    (r,) = run_all(cli, [("db", "status")]).values()
    assert r.code == 1 and "Traceback" not in r.err, r.err
    assert r.err.startswith(f"error: cannot reach the database at {url}: {wrong} "), r.err
    assert r.err.rstrip().endswith(
        "does not exist; check database_url in cadence.yaml (or CADENCE_DATABASE_URL)"
    ), r.err


@pytest.mark.postgres
def test_a_postgresql_url_without_a_driver_is_psycopg_3(cli: Cli, pg_url: str) -> None:
    """`postgresql://` (and Heroku's `postgres://`) as most tools write it: psycopg 3, the one
    driver cadence installs. Another driver named is refused in one line that says so."""
    _, rest = pg_url.split("://", 1)
    plain = with_database(cli, f"postgresql://{rest}")
    assert plain("db", "upgrade").out.startswith("database schema: upgraded")
    assert plain("customers", "import", "samples/customers.jsonl").code == 0
    heroku = Cli(plain.cwd, {**plain.env, "CADENCE_DATABASE_URL": f"postgres://{rest}"})
    assert heroku("db", "status").out.startswith("database schema: current")
    other = Cli(plain.cwd, {**plain.env, "CADENCE_DATABASE_URL": f"postgresql+psycopg2://{rest}"})
    r = other("db", "status", check=False)
    assert r.code == 1 and r.err.strip() == (
        "error: postgresql+psycopg2: cadence speaks to PostgreSQL through psycopg 3 only; use "
        "postgresql://user@host/db (or postgresql+psycopg://)"
    ), r.err
