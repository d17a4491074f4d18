"""The first start on a new database: whoever starts first, and however many start together,
the schema is made once, whole, and every process ends well (issue 20 (a)).

`cadence run` used to open the store lazily from its scheduler's threads; on a new SQLite file
several migrated at once (one run died in libsqlite3 and left a schema half made).
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cadence.ledger.db import HEAD

REPO = Path(__file__).resolve().parents[2]


def setup(folder: Path, url: str) -> dict[str, str]:
    """A folder with a config and no database yet. The unsubscribe secret comes from the
    environment, so nothing opens the store before the daemon's own start-up does."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rules").mkdir(exist_ok=True)
    (folder / "cadence.yaml").write_text(
        f"database_url: {url}\n"
        f"templates_dir: {REPO / 'templates'}\n"
        "transport: {kind: file, file: {dir: outbox}}\n"
        "http: {listen: '127.0.0.1:0'}\n"
        "daemon: {tick: 1s, lease: 3s}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CADENCE_")}
    env.update(
        CADENCE_CONFIG=str(folder / "cadence.yaml"),
        CADENCE_UNSUBSCRIBE_SECRET="first-start-secret",
        CADENCE_NO_DAEMON_PREVIEW="1",  # a preview opens the store itself, racing the others
    )
    return env


def cadence(folder: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cadence", *args],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class Started:
    """A daemon started on a new database, its output in a file (a pipe could fill up)."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.log = folder / f"daemon-{time.monotonic_ns()}.log"
        self.handle = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cadence", "run"],
            cwd=folder,
            env=env,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
        )

    def healthy(self) -> bool:
        """/healthz says ok (database and scheduler)."""
        found = re.search(r"http listening on 127\.0\.0\.1:(\d+)", self.log.read_text())
        if not found:
            return False
        try:
            r = httpx.get(f"http://127.0.0.1:{found[1]}/healthz", timeout=2)
        except httpx.HTTPError:
            return False
        return r.status_code == 200

    def wait_healthy(self, deadline: float) -> bool:
        while not self.healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.handle.close()
        return code, self.log.read_text()


def stop_when_healthy(*daemons: Started) -> list[tuple[bool, int, str]]:
    """Each daemon's health within a minute, then its exit code and log after SIGTERM (sent
    a moment after it is healthy: a tick, a sweep and the look for receipts have all run)."""
    deadline = time.monotonic() + 60
    healthy = [d.wait_healthy(deadline) for d in daemons]
    time.sleep(1.5)
    return [(ok, *d.stop()) for ok, d in zip(healthy, daemons, strict=True)]


def schema_version(db: Path) -> str | None:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return row[0] if row else None


def test_ten_first_starts_on_ten_new_sqlite_files_all_end_current(tmp_path: Path) -> None:
    folders = [tmp_path / f"setup-{i}" for i in range(10)]
    daemons = [Started(f, setup(f, f"sqlite:///{f / 'cadence.db'}")) for f in folders]
    results = stop_when_healthy(*daemons)
    for folder, (healthy, code, out) in zip(folders, results, strict=True):
        assert healthy and code == 0, out
        assert "Traceback" not in out, out
        assert "cadence daemon stopped" in out
        assert "tick failed" not in out and "sweep failed" not in out, out
        assert out.count("Running upgrade  -> 0001") == 1, out  # migrated once
        assert schema_version(folder / "cadence.db") == HEAD
    status = subprocess.run(
        [sys.executable, "-m", "cadence", "db", "status"],
        cwd=folders[0],
        env=setup(folders[0], f"sqlite:///{folders[0] / 'cadence.db'}"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0 and f"current ({HEAD})" in status.stdout


def test_a_daemon_and_commands_starting_together_on_one_new_file(tmp_path: Path) -> None:
    """A daemon, a pass, a preview, an import and an upgrade at once on one new file: one of
    them makes the schema, the others find it made, and each says what it says on a made
    schema (the preview: no such customer)."""
    env = setup(tmp_path, f"sqlite:///{tmp_path / 'cadence.db'}")
    (tmp_path / "customers.jsonl").write_text(
        '{"id": "c-1", "email": "ana@acme.test", "name": "Ana"}\n'
    )
    for attempt in range(2):  # two rounds, two new files: two chances to collide
        db = tmp_path / "cadence.db"
        for leftover in tmp_path.glob("cadence.db*"):
            leftover.unlink()
        daemon = Started(tmp_path, env)
        commands = {
            "run --once": cadence(tmp_path, env, "run", "--once"),
            "preview": cadence(tmp_path, env, "preview", "c-404"),
            "import": cadence(tmp_path, env, "customers", "import", "customers.jsonl"),
            "upgrade": cadence(tmp_path, env, "db", "upgrade"),
        }
        outcome = {
            name: (*p.communicate(timeout=120), p.returncode) for name, p in commands.items()
        }
        ((healthy, code, log),) = stop_when_healthy(daemon)
        assert healthy and code == 0 and "Traceback" not in log, log
        for name, (_, err, rc) in outcome.items():
            assert "Traceback" not in err, (attempt, name, err)
            if name == "preview":
                assert rc == 1 and err.strip() == "error: no customer with id 'c-404'", err
            else:
                assert rc == 0, (attempt, name, err)
        assert schema_version(db) == HEAD


def test_a_schema_a_first_migration_left_half_made_is_made_again(tmp_path: Path) -> None:
    """What the old race left (a version table with no version, some tables, no rows) is
    started again; with rows in it, it is left alone, with a message saying why."""
    db = tmp_path / "cadence.db"
    env = setup(tmp_path, f"sqlite:///{db}")
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.execute("CREATE TABLE customers (id VARCHAR NOT NULL PRIMARY KEY)")
    half_made = cadence(tmp_path, env, "db", "status")
    _, err = half_made.communicate(timeout=60)
    assert half_made.returncode == 1 and "partial" in err
    first = cadence(tmp_path, env, "run", "--once")
    _, err = first.communicate(timeout=60)
    assert first.returncode == 0 and "Traceback" not in err, err
    assert schema_version(db) == HEAD

    db.unlink()
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.execute("CREATE TABLE customers (id VARCHAR NOT NULL PRIMARY KEY)")
        conn.execute("INSERT INTO customers VALUES ('c-1')")
    kept = cadence(tmp_path, env, "run", "--once")
    _, err = kept.communicate(timeout=60)
    assert kept.returncode == 1 and "Traceback" not in err
    assert err.count("\n") == 1 and "customers hold rows" in err, err
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT id FROM customers").fetchall() == [("c-1",)]


@pytest.mark.postgres
def test_upgrades_starting_together_on_a_new_postgresql_database(
    pg_url: str, tmp_path: Path
) -> None:
    """`cadence db upgrade` from three processes at once: the advisory lock lets one
    migrate; the others find the schema current."""
    env = setup(tmp_path, pg_url)
    upgrades = [cadence(tmp_path, env, "db", "upgrade") for _ in range(3)]
    for p in upgrades:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0 and "Traceback" not in err, err
    status = cadence(tmp_path, env, "db", "status")
    out, _ = status.communicate(timeout=60)
    assert status.returncode == 0 and f"current ({HEAD})" in out
