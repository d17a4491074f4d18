"""The contract's commands (issue 24) end to end, in subprocesses: `--version`, `db current`,
`db history`, `db upgrade` and `db downgrade`, `ledger` and `upcoming`."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cadence.ledger.db import HEAD
from cadence.model import Status
from cadence.printing import LEDGER_COLUMNS, UPCOMING_COLUMNS
from cadence.starter.writer import next_monday

from .conftest import Cli

D = timedelta(days=1)


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


@pytest.mark.postgres
def test_db_downgrade_and_upgrade_on_postgresql(cli: Cli, pg_url: str) -> None:
    run = Cli(cli.cwd, dict(cli.env, CADENCE_DATABASE_URL=pg_url))
    assert run("db", "upgrade").out.strip().endswith(f"-> {HEAD}")
    assert (
        run("db", "downgrade", "0004").out.strip() == f"database schema: downgraded {HEAD} -> 0004"
    )
    assert run("db", "current").out.startswith("0004 (the newest is")
    assert run("db", "upgrade").out.strip() == f"database schema: upgraded 0004 -> {HEAD}"


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
    assert len(_json(setup, "ledger", "--limit", "0")) == before[0]


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


# -- cadence ledger ----------------------------------------------------------------------------


def _json(cli: Cli, *args: str) -> list[dict[str, Any]]:
    found = json.loads(cli(*args, "--format", "json").out)
    assert isinstance(found, list)
    return found


def _csv(cli: Cli, *args: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(cli(*args, "--format", "csv").out)))


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _samples(cli: Cli, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (cli.cwd / "samples" / name).read_text().splitlines()]


def _newest_first(rows: list[dict[str, Any]]) -> bool:
    keys = [(-_time(r["at"]).timestamp(), r["message"]) for r in rows]
    return keys == sorted(keys)


def test_ledger_lists_every_message_newest_first(setup: Cli) -> None:
    every = _json(setup, "ledger", "--limit", "0")
    submitted = {m["id"] for m in _samples(setup, "messages.jsonl")}
    recorded = {m["id"] for m in _samples(setup, "recorded.jsonl")}
    ids = [r["message"] for r in every]
    assert len(ids) == len(set(ids)) and set(ids) >= submitted | recorded
    assert any(i.startswith("pb:") for i in ids)  # the check-ins the playbooks created
    assert all(tuple(r)[: len(LEDGER_COLUMNS)] == LEDGER_COLUMNS for r in every)
    assert all(Status(r["status"]) and r["at"] and r["reason"] for r in every)
    assert _newest_first(every)
    call = next(r for r in every if r["message"] == "call-5498")
    assert (call["channel"], call["status"], call["at"]) == (
        "call",
        "recorded",
        "2026-12-01T19:00:00Z",
    )

    assert _json(setup, "ledger") == every[:200]  # the default limit
    assert _json(setup, "ledger", "--limit", "3") == every[:3]
    table = setup("ledger", "--limit", "1").out
    assert "1 message in the ledger, newest first (the newest 1; --limit 0 for all)" in table
    assert every[0]["message"] in table
    title = f"^{len(every)} messages in the ledger, newest first *$"
    assert re.search(title, setup("ledger").out, re.M)  # all of them: no limit to mention

    as_csv = _csv(setup, "ledger", "--limit", "0")
    assert list(as_csv[0]) == list(LEDGER_COLUMNS)
    assert [r["message"] for r in as_csv] == ids
    assert all(c["email"] == (j["email"] or "") for c, j in zip(as_csv, every, strict=True))


def test_ledger_filters(setup: Cli) -> None:
    setup("run", "--once", "--now", (next_monday(datetime.now(UTC)) - D).isoformat())
    every = _json(setup, "ledger", "--limit", "0")
    planned = [r for r in every if r["status"] in ("scheduled", "merged")]
    assert planned and all(r["email"] for r in planned)  # the pass put each in an email
    for option, key, value in (
        ("--customer", "customer", "c-17"),
        ("--role", "role", "success"),
        ("--category", "category", "check-in"),
        ("--channel", "channel", "call"),
        ("--status", "status", "recorded"),
    ):
        expected = [r for r in every if r[key] == value]
        assert expected and len(expected) < len(every), option
        assert _json(setup, "ledger", option, value, "--limit", "0") == expected, option
        assert [r["message"] for r in _csv(setup, "ledger", option, value, "--limit", "0")] == [
            r["message"] for r in expected
        ]
    acme = {c["id"] for c in _samples(setup, "customers.jsonl") if c.get("account") == "acme"}
    mine = _json(setup, "ledger", "--account", "acme", "--limit", "0")
    assert mine == [r for r in every if r["customer"] in acme] and mine != every
    both = _json(setup, "ledger", "--customer", "c-17", "--status", "recorded", "--limit", "0")
    assert both and all(r["customer"] == "c-17" and r["status"] == "recorded" for r in both)

    middle = every[len(every) // 2]["at"]
    since = _json(setup, "ledger", "--since", middle, "--limit", "0")
    until = _json(setup, "ledger", "--until", middle, "--limit", "0")
    assert since == [r for r in every if r["at"] >= middle]  # at or after
    assert until == [r for r in every if r["at"] < middle]  # before
    later = (_time(middle) + timedelta(seconds=1)).isoformat()
    one = _json(setup, "ledger", "--since", middle, "--until", later)
    assert one and all(r["at"] == middle for r in one)
    assert _json(setup, "ledger", "--customer", "c-404") == []
    assert "no message matches" in setup("ledger", "--customer", "c-404").out


def test_ledger_refuses_bad_input_in_one_line(setup: Cli) -> None:
    for args, said in (
        (("--status", "delivered"), "error: --status 'delivered' is not a status; one of "),
        (("--since", "2026-12-01T09:00"), "error: --since '2026-12-01T09:00' has no UTC offset"),
        (("--until", "soon"), "error: --until 'soon' is not an ISO 8601 time"),
        (("--limit", "-1"), "error: --limit must be 0 (all) or more"),
        (("--format", "xml"), "error: --format must be table, json or csv"),
    ):
        r = setup("ledger", *args, check=False)
        assert r.code == 2 and r.err.startswith(said) and r.err.count("\n") == 1, (args, r)
        assert r.out == ""


# -- cadence upcoming --------------------------------------------------------------------------


def test_upcoming_lists_every_customers_planned_emails_soonest_first(setup: Cli) -> None:
    base = next_monday(datetime.now(UTC))
    own = {
        "id": "n-1",
        "customer": "c-21",
        "role": "billing",
        "category": "renewal",
        "subject": "Your  renewal",
        "body_text": "b",
        "transactional": True,  # so no rule holds it back
        "send_after": (base + 3 * D).isoformat(),
    }
    setup("messages", "submit", "-", stdin=json.dumps(own) + "\n")
    at = base - D
    setup("run", "--once", "--now", at.isoformat())
    ledger = {r["message"]: r for r in _json(setup, "ledger", "--limit", "0")}

    emails = _json(setup, "upcoming", "--at", at.isoformat(), "--days", "14")
    assert len(emails) >= 5
    keys = [(_time(e["send_at"]), e["id"]) for e in emails]
    assert keys == sorted(keys) and len({e["id"] for e in emails}) == len(emails)
    assert all(at <= t < at + 14 * D for t, _ in keys)
    zones = {c["id"]: str(c["timezone"]) for c in _samples(setup, "customers.jsonl")}
    for e in emails:
        assert set(UPCOMING_COLUMNS) <= set(e), e
        local = datetime.fromisoformat(e["send_at_local"])
        assert local == _time(e["send_at"])
        zone = ZoneInfo(zones[e["customer"]])
        assert local.utcoffset() == _time(e["send_at"]).astimezone(zone).utcoffset()
        for member in e["members"]:  # the ledger says the same: the message is in this email
            assert (
                ledger[member]["email"] == e["id"] and ledger[member]["customer"] == e["customer"]
            )
    (mine,) = [e for e in emails if e["members"] == ["n-1"]]
    assert mine["subject"] == "Your renewal"  # its own subject, on one line
    digest = [e for e in emails if len(e["members"]) > 1]
    assert digest and all(e["subject"] is None for e in digest)  # a digest's: once rendered

    week = _json(setup, "upcoming", "--at", at.isoformat())  # 7 days by default
    assert week == [e for e in emails if _time(e["send_at"]) < at + 7 * D] and week != emails
    marketing = _json(
        setup, "upcoming", "--at", at.isoformat(), "--days", "14", "--role", "marketing"
    )
    assert marketing == [e for e in emails if e["role"] == "marketing"] and marketing
    tours = ("--category", "product-tour")
    assert _json(setup, "upcoming", "--at", at.isoformat(), "--days", "14", *tours) == [
        e for e in emails if e["category"] == "product-tour"
    ]

    rows = _csv(setup, "upcoming", "--at", at.isoformat(), "--days", "14")
    assert list(rows[0]) == list(UPCOMING_COLUMNS)
    assert [(r["id"], r["customer"], r["members"]) for r in rows] == [
        (e["id"], e["customer"], " ".join(e["members"])) for e in emails
    ]
    table = setup("upcoming", "--at", at.isoformat(), "--days", "14").out
    assert f"{len(emails)} planned emails, " in table and "soonest first" in table
    assert all(e["id"] not in table for e in emails) and "Your renewal" in table
    # a template's subject is known once rendered: the table names the template instead
    assert "(template product_tour)" in " ".join(table.split())
    one = setup("upcoming", "--at", at.isoformat(), "--days", "14", "--category", "renewal")
    count = len([e for e in emails if e["category"] == "renewal"])
    assert f"{count} planned email{'' if count == 1 else 's'}, " in one.out


def test_upcoming_refuses_bad_input_in_one_line(setup: Cli) -> None:
    for args, said in (
        (("--at", "2026-12-01T09:00"), "error: --at '2026-12-01T09:00' has no UTC offset"),
        (
            ("--at", "2026-12-01Z"),
            "error: --at '2026-12-01Z' is a date, not a time; write e.g. 2026-12-01T00:00:00Z",
        ),
        (("--days", "0"), "error: --days must be 1 or more"),
        (("--format", "yaml"), "error: --format must be table, json or csv"),
    ):
        r = setup("upcoming", *args, check=False)
        assert r.code == 2 and r.err.startswith(said) and r.err.count("\n") == 1, (args, r)
