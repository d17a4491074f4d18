"""The contract's commands (issue 24) end to end, in subprocesses: `--version`, `db current`,
`db history`, `db upgrade` and `db downgrade`, `ledger` and `upcoming`."""

from __future__ import annotations

import re
import sqlite3
from importlib.metadata import version
from pathlib import Path

from cadence.ledger.db import HEAD

from .conftest import Cli


def _fresh(cli: Cli, tmp_path: Path) -> tuple[Cli, Path]:
    """A folder whose database is a new SQLite file, named by the environment."""
    db = tmp_path / "fresh.db"
    return Cli(cli.cwd, dict(cli.env, CADENCE_DATABASE_URL=f"sqlite:///{db}")), db


def _recorded(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        (row,) = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        return str(row[0])


def test_version_is_the_installed_one(cli: Cli) -> None:
    out = cli("--version")
    assert out.out.strip() == f"cadence {version('cadence')}"
    assert "--version" in cli("--help").out


def test_db_upgrade_current_history_downgrade_on_a_new_file(cli: Cli, tmp_path: Path) -> None:
    run, db = _fresh(cli, tmp_path)
    assert run("db", "current").out.startswith("none: the database is empty")
    assert (
        run("db", "upgrade").out.strip() == f"database schema: upgraded an empty database -> {HEAD}"
    )
    assert run("db", "upgrade").out.strip() == f"database schema: already at {HEAD}"
    assert run("db", "current").out.strip() == f"{HEAD} (head)"

    history = run("db", "history").out.splitlines()
    revisions = [re.split(r"\s+", line[2:])[0] for line in history]
    assert revisions == sorted(revisions, reverse=True) and revisions[0] == HEAD
    assert "0001" in revisions
    (marked,) = [line for line in history if line.startswith("*")]
    assert marked.startswith(f"* {HEAD} (head, current)")

    down = run("db", "downgrade", "0004")
    assert down.out.strip() == f"database schema: downgraded {HEAD} -> 0004"
    assert _recorded(db) == "0004"
    assert (
        run("db", "current").out.strip() == f"0004 (the newest is {HEAD}; run `cadence db upgrade`)"
    )
    (marked,) = [line for line in run("db", "history").out.splitlines() if line.startswith("*")]
    assert marked.startswith("* 0004 (current)")
    status = run("db", "status", check=False)
    assert status.code == 1 and "outdated" in status.err

    assert run("db", "downgrade", "0004").out.strip() == "database schema: already at 0004"
    assert run("db", "upgrade").out.strip() == f"database schema: upgraded 0004 -> {HEAD}"
    assert _recorded(db) == HEAD


def test_db_downgrade_keeps_the_rows_the_older_schema_has(setup: Cli) -> None:
    """The sample ledger, taken back and brought forward again: its customers and messages
    are all there (SQLite's copy-and-rename keeps the foreign keys whole)."""
    db = setup.cwd / "cadence.db"
    with sqlite3.connect(db) as conn:
        before = conn.execute("SELECT count(*) FROM messages").fetchone()
    assert setup("db", "downgrade", "0005").out.strip().endswith(f"{HEAD} -> 0005")
    assert setup("db", "upgrade").out.strip().endswith(f"upgraded 0005 -> {HEAD}")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone() == before
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_db_downgrade_refuses_what_it_cannot_do(cli: Cli, tmp_path: Path) -> None:
    run, db = _fresh(cli, tmp_path)
    missing = run("db", "downgrade", check=False)
    assert missing.code == 2 and missing.err.count("\n") == 1 and "db history" in missing.err
    empty = run("db", "downgrade", "0004", check=False)
    assert empty.code == 1 and "no migration" in empty.err and empty.err.count("\n") == 1
    run("db", "upgrade")
    unknown = run("db", "downgrade", "0099", check=False)
    assert unknown.code == 1 and "no migration '0099'" in unknown.err
    assert unknown.err.count("\n") == 1 and "Traceback" not in unknown.err
    run("db", "downgrade", "0003")
    newer = run("db", "downgrade", "0005", check=False)
    assert newer.code == 1 and "0005 is newer than the database's 0003" in newer.err
    assert _recorded(db) == "0003"
