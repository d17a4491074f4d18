"""The conventions every command keeps (issue 24), end to end in subprocesses: `--help` lists
each command on one line and shows no type beside a flag, counts read "1 email", the import
commands print their summary as text or JSON and name their input's format `--input-format`;
and the bugs of the same issue: what preview says of a transactional message days away, the
Date of a pass at `--now`, the daemon's JSON logs, tables on an 80-column terminal."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import Cli

#: every command and group; `--help` of each is looked at
COMMANDS = [
    (),
    ("init",),
    ("preview",),
    ("run",),
    ("demo",),
    ("simulate",),
    ("explain",),
    ("ledger",),
    ("upcoming",),
    ("report",),
    ("db",),
    ("db", "upgrade"),
    ("db", "status"),
    ("db", "current"),
    ("db", "history"),
    ("db", "downgrade"),
    ("rules",),
    ("rules", "check"),
    ("rules", "schema"),
    ("customers", "import"),
    ("messages", "submit"),
    ("messages", "record"),
    ("messages", "cancel"),
    ("events", "ingest"),
    ("emails", "unconfirmed"),
    ("emails", "settle"),
]
GROUPS = [(), ("db",), ("rules",), ("customers",), ("messages",), ("events",), ("emails",)]


def _command_rows(help_text: str) -> list[str]:
    """The rows of the Commands panel, without the box."""
    panel = help_text.split("Commands", 1)[1]
    rows = []
    for line in panel.splitlines()[1:]:
        if not line.startswith("│"):
            break
        rows.append(line.strip("│ \n"))
    return rows


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: " ".join(g) or "cadence")
def test_each_command_is_listed_on_one_line(cli: Cli, group: tuple[str, ...]) -> None:
    # 200 columns: a row that goes on to a second line was broken by the text, not the width
    rows = _command_rows(cli(*group, "--help").out)
    assert rows
    for row in rows:
        assert re.match(r"^[a-z-]+\s{2,}\S", row), (
            f"a summary broke onto a line of its own: {row!r}"
        )


def test_summaries_fit_an_80_column_terminal(cli: Cli) -> None:
    narrow = Cli(cli.cwd, dict(cli.env, COLUMNS="80"))
    for group in GROUPS:
        for row in _command_rows(narrow(*group, "--help").out):
            assert re.match(r"^[a-z-]+\s{2,}\S", row), f"{group}: {row!r} wrapped"


def test_no_type_is_shown_beside_a_flag(cli: Cli) -> None:
    for command in COMMANDS:
        out = cli(*command, "--help").out
        assert "<bool>" not in out, f"cadence {' '.join(command)} --help shows <bool>"
        assert re.search(r"--help\s+Show this message", out)


def test_the_version_flag_takes_no_value(cli: Cli) -> None:
    out = cli("--help").out
    assert re.search(r"--version\s+Print the version", out)


# -- the import commands' summaries ------------------------------------------------------------


def _customers(cli: Cli, *rows: str) -> Path:
    path = cli.cwd / "people.jsonl"
    path.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    return path


ANA = '{"id": "c-1", "email": "ana@acme.test", "name": "Ana", "timezone": "UTC", "attributes": {}}'


def test_import_summary_counts_in_words(cli: Cli) -> None:
    path = _customers(cli, ANA)
    assert cli("customers", "import", str(path)).out.strip() == "1 added, 0 updated, 0 unchanged"
    bad = _customers(cli, '{"id": "c-2"}')
    out = cli("customers", "import", str(bad), check=False)
    assert out.code == 1
    assert "rejected, nothing stored (1 invalid record)" in out.err
    assert cli("messages", "cancel", "nope", check=False).out.strip() == "0 messages cancelled"


def test_a_message_naming_a_missing_template_is_stored_with_a_warning(cli: Cli) -> None:
    cli("init", ".")
    cli("customers", "import", "samples/customers.jsonl")
    misspelt = cli.cwd / "tips.jsonl"
    misspelt.write_text(
        '{"id": "t-1", "customer": "c-17", "role": "product", "template": "product_tour"}\n'
        '{"id": "t-2", "customer": "c-17", "role": "product", "template": "product_tur"}\n',
        encoding="utf-8",
    )
    # stored all the same (the template may be on its way), exit 0, the warning at its line
    out = cli("messages", "submit", str(misspelt))
    assert out.out.strip() == "2 added, 0 updated, 0 unchanged"
    assert out.err.strip() == (
        f"{misspelt}:2: warning: template `product_tur` (its email is held until it is fixed): "
        f"missing product_tur.subject.j2 and product_tur.text.j2 in {cli.cwd / 'templates'}; "
        "did you mean `product_tour`?"
    )
    again = cli.cwd / "more.jsonl"
    again.write_text(
        '{"id": "t-3", "customer": "c-17", "role": "product", "template": "nosuch"}\n',
        encoding="utf-8",
    )
    summary = json.loads(cli("messages", "submit", str(again), "--format", "json").out)
    assert summary["stored"] is True and summary["added"] == 1
    ((warning),) = summary["warnings"]
    assert warning["line"] == 1 and warning["reason"].startswith("warning: template `nosuch`")
    assert "did you mean" not in warning["reason"]


def test_import_summary_as_json(cli: Cli) -> None:
    path = _customers(cli, ANA)
    first = json.loads(cli("customers", "import", str(path), "--format", "json").out)
    assert first == {
        "file": str(path),
        "stored": True,
        "added": 1,
        "updated": 0,
        "unchanged": 0,
        "invalid": 0,
        "errors": [],
        "warnings": [],
    }
    again = json.loads(cli("customers", "import", str(path), "--format", "json").out)
    assert (again["added"], again["unchanged"]) == (0, 1)

    bad = _customers(cli, ANA, '{"id": "c-2"}')
    out = cli("customers", "import", str(bad), "--format", "json", check=False)
    assert out.code == 1
    rejected = json.loads(out.out)
    assert rejected["stored"] is False and rejected["invalid"] == 1
    assert rejected["errors"][0]["line"] == 2
    assert "email" in rejected["errors"][0]["reason"]
    assert f"{bad}:2:" in out.err  # the contract's FILE:LINE: reason, as always


def test_events_summary_as_json_says_what_playbooks_did(cli: Cli) -> None:
    cli("init", ".")
    cli("customers", "import", "samples/customers.jsonl")
    out = json.loads(cli("events", "ingest", "samples/events.jsonl", "--format", "json").out)
    assert out["stored"] is True and out["added"] > 0
    assert set(out["check_ins"]) == {"created", "cancelled"}
    assert out["check_ins"]["created"] >= 1


def test_submit_and_record_print_json_too(cli: Cli) -> None:
    cli("init", ".")
    cli("customers", "import", "samples/customers.jsonl")
    for command, sample in (("record", "recorded"), ("submit", "messages")):
        out = json.loads(
            cli("messages", command, f"samples/{sample}.jsonl", "--format", "json").out
        )
        assert out["file"] == f"samples/{sample}.jsonl" and out["added"] > 0


def test_the_input_format_has_its_own_option(cli: Cli) -> None:
    table = cli.cwd / "people.txt"
    table.write_text("id,email,name,timezone\nc-9,cy@acme.test,Cy,UTC\n", encoding="utf-8")
    out = cli("customers", "import", str(table), "--input-format", "csv", "--format", "json")
    assert json.loads(out.out)["added"] == 1
    piped = cli("customers", "import", "-", "--input-format", "csv", stdin=table.read_text("utf-8"))
    assert piped.out.strip() == "0 added, 0 updated, 1 unchanged"


@pytest.mark.parametrize("command", [("customers", "import"), ("messages", "submit")])
def test_format_names_the_output_and_says_so(cli: Cli, command: tuple[str, ...]) -> None:
    path = _customers(cli, ANA)
    out = cli(*command, str(path), "--format", "csv", check=False)
    assert out.code == 2
    assert "--input-format csv" in out.err
    out = cli(*command, str(path), "--format", "yaml", check=False)
    assert out.code == 2
    assert "error: --format must be text or json, not 'yaml'" in out.err


# -- what preview says ------------------------------------------------------------------------


def test_preview_of_a_transactional_message_days_away_says_when_it_goes(cli: Cli) -> None:
    path = _customers(cli, ANA)
    cli("customers", "import", str(path))
    receipt = {
        "id": "bill-1",
        "customer": "c-1",
        "role": "billing",
        "category": "receipt",
        "subject": "Your renewal",
        "body_text": "Thanks.",
        "transactional": True,
        "send_after": "2026-12-10T15:00:00Z",
    }
    cli("messages", "submit", "-", stdin=json.dumps(receipt) + "\n")
    at = "2026-12-07T09:00:00Z"
    out = json.loads(cli("preview", "c-1", "--at", at, "--format", "json").out)
    (decision,) = [d for d in out["decisions"] if d["message"] == "bill-1"]
    assert decision["send_at"] == "2026-12-10T15:00:00Z"
    assert "at once" not in decision["reason"]
    assert "goes at its own send time" in decision["reason"]
    table = cli("preview", "c-1", "--at", at).out
    assert "at once" not in table


def test_emails_of_a_pass_at_now_are_dated_now(cli: Cli) -> None:
    from email import message_from_bytes
    from email.utils import parsedate_to_datetime

    path = _customers(cli, ANA)
    cli("customers", "import", str(path))
    note = {
        "id": "cs-1",
        "customer": "c-1",
        "role": "success",
        "category": "check-in",
        "subject": "Hello",
        "body_text": "How is it going?",
        "send_after": "2026-12-07T14:00:00Z",
    }
    cli("messages", "submit", "-", stdin=json.dumps(note) + "\n")
    cli("run", "--once", "--now", "2026-12-07T15:00:00Z")
    (eml,) = (cli.cwd / "outbox").glob("*.eml")
    date = message_from_bytes(eml.read_bytes())["Date"]
    assert parsedate_to_datetime(date).isoformat() == "2026-12-07T15:00:00+00:00"


# -- the daemon's logs ------------------------------------------------------------------------


def _daemon_log(cli: Cli, *args: str, config: str = "") -> list[str]:
    """The stderr lines of a daemon started with `args`, from start until SIGTERM."""
    (cli.cwd / "cadence.yaml").write_text(
        "http: {listen: '127.0.0.1:0'}\n" + config, encoding="utf-8"
    )
    (cli.cwd / "rules").mkdir(exist_ok=True)
    log = cli.cwd / f"daemon-{len(list(cli.cwd.glob('daemon-*')))}.log"
    with log.open("w") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cadence", "run", *args],
            cwd=cli.cwd,
            env=cli.env,
            stdout=handle,
            stderr=handle,
        )
        try:
            deadline = time.monotonic() + 60
            while "cadence daemon started" not in log.read_text():
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0, log.read_text()
    return [line for line in log.read_text().splitlines() if line.strip()]


def test_the_daemon_logs_one_json_object_a_line(cli: Cli) -> None:
    lines = _daemon_log(cli, "--log-format", "json")
    records = [json.loads(line) for line in lines]  # every line is one object
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record)
        assert record["time"].endswith("Z")
    messages = [r["message"] for r in records]
    assert any(m.startswith("cadence daemon started") for m in messages)
    assert any(m.startswith("cadence daemon stopped") for m in messages)
    assert {r["logger"] for r in records} >= {"cadence.daemon"}


def test_the_log_format_can_be_set_in_the_config(cli: Cli) -> None:
    lines = _daemon_log(cli, config="daemon: {log_format: json}\n")
    assert all(line.startswith("{") for line in lines)
    text = _daemon_log(cli)  # the default: text a person reads
    assert not text[0].startswith("{") and " INFO cadence.daemon " in "\n".join(text)


def test_a_wrong_log_format_is_wrong_usage(cli: Cli) -> None:
    out = cli("run", "--log-format", "xml", check=False)
    assert out.code == 2 and "error: --log-format must be text or json, not 'xml'" in out.err


# -- tables on an 80-column terminal ----------------------------------------------------------


def test_tables_break_lines_between_words_at_80_columns(cli: Cli) -> None:
    cli("init", ".")
    cli("customers", "import", "samples/customers.jsonl")
    cli("messages", "record", "samples/recorded.jsonl")
    cli("messages", "submit", "samples/messages.jsonl")
    cli("events", "ingest", "samples/events.jsonl")
    entries = json.loads(cli("ledger", "--limit", "0", "--format", "json").out)
    narrow = Cli(cli.cwd, dict(cli.env, COLUMNS="80", CADENCE_NO_DAEMON_PREVIEW="1"))
    first = entries[-1]["message"]
    outputs = {
        "ledger": narrow("ledger", "--limit", "0").out,
        "preview": narrow("preview", "c-17").out,
        "explain": narrow("explain", first).out,
        "upcoming": narrow("upcoming", "--days", "30").out,
    }
    words = {e[k] for e in entries for k in ("role", "category", "status") if e[k]}
    for name, out in outputs.items():
        assert max(len(line) for line in out.splitlines()) <= 80, name
    cells = {
        name: {c.strip() for line in out.splitlines() for c in line.split("│")}
        for name, out in outputs.items()
    }
    ledger_words = " ".join(cells["ledger"]).split()
    for word in words:  # every role, category and status whole, none cut across two lines
        assert word in ledger_words, word
    preview_words = " ".join(cells["preview"]).split()
    for word in ("merged", "suppressed", "scheduled", "onboarding-digest"):
        assert word in preview_words, word
