"""Long commands show a progress bar on a terminal, and nothing more anywhere else: run in a
real pseudo-terminal, the imports, `simulate`, `report` and `demo` draw Rich's bar (then erase
it); piped, or with `--format json` even on a terminal, they print exactly what they print
without one."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from datetime import UTC, datetime, timedelta

from cadence.starter.writer import next_monday

from .conftest import Cli

#: what the bar shows beside its label and never anything else prints: the time elapsed
ELAPSED = "0:00:0"


def drew_bar(text: str, label: str) -> bool:
    return label in text and ELAPSED in text


def in_terminal(cli: Cli, *args: str) -> str:
    """What `cadence ARGS` writes to a terminal (stdout and stderr both go to it)."""
    main, other = pty.openpty()
    fcntl.ioctl(other, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    env = {k: v for k, v in cli.env.items() if k not in ("FORCE_COLOR", "NO_COLOR")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cadence", *args],
        cwd=cli.cwd,
        env=env,
        stdin=other,
        stdout=other,
        stderr=other,
    )
    os.close(other)
    seen = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # the child closed the terminal: all of it is read
            break
        if not data:
            break
        seen.append(data)
    os.close(main)
    assert proc.wait(timeout=120) == 0, b"".join(seen).decode(errors="replace")
    return b"".join(seen).decode().replace("\r\n", "\n")


def _period() -> tuple[str, str]:
    base = next_monday(datetime.now(UTC))
    return base.isoformat(), (base + timedelta(days=2)).isoformat()


def test_imports_draw_a_bar_on_a_terminal_and_print_only_the_summary_piped(cli: Cli) -> None:
    cli("init", ".")
    shown = in_terminal(cli, "customers", "import", "samples/customers.jsonl")
    assert drew_bar(shown, "importing customers")
    assert shown.endswith("added, 0 updated, 0 unchanged\n")
    customers = len((cli.cwd / "samples" / "customers.jsonl").read_text().splitlines())
    piped = cli("customers", "import", "samples/customers.jsonl")
    assert (piped.out, piped.err) == (f"0 added, 0 updated, {customers} unchanged\n", "")
    for label, *args in (
        ("recording touches", "messages", "record", "samples/recorded.jsonl"),
        ("submitting messages", "messages", "submit", "samples/messages.jsonl"),
        ("ingesting events", "events", "ingest", "samples/events.jsonl"),
    ):
        shown = in_terminal(cli, *args)
        assert drew_bar(shown, label)
        assert shown.endswith("updated, 0 unchanged\n") or "check-in" in shown
    # with --format json, not even a terminal sees a bar: the summary alone
    shown = in_terminal(cli, "customers", "import", "samples/customers.jsonl", "--format", "json")
    assert json.loads(shown)["unchanged"] == customers


def test_simulate_draws_a_bar_on_a_terminal_not_with_json_or_piped(setup: Cli) -> None:
    start, end = _period()
    args = ("simulate", "--start", start, "--end", end)
    shown = in_terminal(setup, *args)
    assert drew_bar(shown, "simulating")
    assert "nothing was sent or stored" in shown
    piped = setup(*args)
    assert piped.err == ""
    assert not drew_bar(piped.out, "simulating") and "\x1b" not in piped.out
    assert "nothing was sent or stored" in piped.out
    as_json = setup(*args, "--format", "json")
    assert in_terminal(setup, *args, "--format", "json") == as_json.out
    assert json.loads(as_json.out)["emails"]


def test_report_draws_a_bar_on_a_terminal_not_with_json_or_piped(setup: Cli) -> None:
    start, end = _period()
    setup("simulate", "--start", start, "--end", end)
    args = ("report", "--since", "7d", "--until", end)
    assert drew_bar(in_terminal(setup, *args), "reading the ledger")
    piped = setup(*args)
    assert piped.err == "" and not drew_bar(piped.out, "reading the ledger")
    assert "\x1b" not in piped.out
    as_json = setup(*args, "--format", "json")
    assert in_terminal(setup, *args, "--format", "json") == as_json.out


def test_demo_draws_a_bar_over_its_weeks(cli: Cli) -> None:
    shown = in_terminal(cli, "demo", "demo", "--weeks", "1")
    assert drew_bar(shown, "running the engine")
    assert "%" in shown  # the weeks have a total: the bar counts to it
    # piped, the demo prints its story alone: `test_cli.test_demo_tells_the_story`
