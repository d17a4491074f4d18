"""`cadence preview` answered by a running daemon prints exactly what the command prints on
its own, and the command still works (and reports errors the same way) when no daemon does."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from cadence.starter.writer import next_monday
from tests.e2e.conftest import Cli
from tests.e2e.test_daemon import Daemon

ASKED = (
    "import sys\n"
    "from cadence.cli.quick import from_daemon\n"
    "out = from_daemon(sys.argv[1:])\n"
    "sys.stdout.write(out or '')\n"
    "sys.exit(0 if out else 3)\n"
)


def _asked(cli: Cli, *args: str) -> subprocess.CompletedProcess[str]:
    """Only the daemon's answer (exit 3 when it gives none), never the command's own work."""
    return subprocess.run(
        [sys.executable, "-c", ASKED, *args],
        cwd=cli.cwd,
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _daemon_env(setup: Cli) -> Path:
    """The daemon's runtime folder, short: a socket's path must fit AF_UNIX's 108 bytes,
    which a test's own temporary folder (under a parallel worker's) may not."""
    run = Path(tempfile.mkdtemp(prefix="cad-run-"))
    run.chmod(0o700)
    setup.env.update(
        XDG_RUNTIME_DIR=str(run),
        # the starter config listens on 8787; any free port here
        CADENCE_HTTP__LISTEN="127.0.0.1:0",
    )
    return run


def test_a_running_daemon_answers_preview_exactly_as_the_command_would(setup: Cli) -> None:
    run = _daemon_env(setup)
    at = next_monday(datetime.now(UTC)).isoformat()
    daemon = Daemon(setup.cwd, setup.env)
    try:
        daemon.wait_for("answering previews on")
        sockets = list((run / "cadence").glob("*.sock"))
        assert len(sockets) == 1
        for args in (
            ("preview", "c-17", "--at", at, "--days", "21", "--format", "json"),
            ("preview", "c-17", "--at", at, "--days", "21"),
            ("preview", "c-17", f"--at={at}", "--render"),
        ):
            answered = _asked(setup, *args)
            assert answered.returncode == 0, answered.stderr
            warm = setup(*args).out
            cold = Cli(setup.cwd, {**setup.env, "CADENCE_NO_DAEMON_PREVIEW": "1"})(*args).out
            assert answered.stdout == warm == cold
        asked = _asked(setup, "preview", "c-17", "--at", at, "--format", "json")
        assert json.loads(asked.stdout)["customer"] == "c-17"
        # errors are the command's own: the daemon declines and the command reports
        assert _asked(setup, "preview", "nobody").returncode == 3
        missing = setup("preview", "nobody", check=False)
        assert missing.code == 1 and "no customer with id 'nobody'" in missing.err
        bad = setup("preview", "c-17", "--at", "tomorrow", check=False)
        assert bad.code == 2 and "not an ISO 8601 time" in bad.err
        # a horizon of no days or fewer is refused, not drawn as "+ -3 days"
        assert _asked(setup, "preview", "c-17", "--days", "-3").returncode == 3
        for days in ("0", "-3"):
            short = setup("preview", "c-17", "--days", days, check=False)
            assert short.code == 2 and short.err.strip() == (
                f"error: --days must be 1 or more, not {days}"
            ), short
        # other settings (here another database) are another daemon's: not this one
        other = Cli(setup.cwd, {**setup.env, "CADENCE_DATABASE_URL": "sqlite:///other.db"})
        assert _asked(other, "preview", "c-17").returncode == 3
    finally:
        assert daemon.stop() == 0
    assert not list((run / "cadence").glob("*.sock"))  # removed on the way out
    assert _asked(setup, "preview", "c-17").returncode == 3
    assert "c-17" in setup("preview", "c-17", "--format", "json").out


def test_a_socket_left_by_a_killed_daemon_is_taken_over(setup: Cli) -> None:
    run = _daemon_env(setup)
    first = Daemon(setup.cwd, setup.env)
    first.wait_for("answering previews on")
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    left = list((run / "cadence").glob("*.sock"))
    assert len(left) == 1  # nobody removed it
    assert _asked(setup, "preview", "c-17").returncode == 3  # nobody answers it either
    assert "c-17" in setup("preview", "c-17", "--format", "json").out
    second = Daemon(setup.cwd, setup.env)
    try:
        second.wait_for("answering previews on")
        deadline = time.monotonic() + 10
        while _asked(setup, "preview", "c-17").returncode != 0:
            assert time.monotonic() < deadline, second.text()
            time.sleep(0.2)
    finally:
        assert second.stop() == 0
