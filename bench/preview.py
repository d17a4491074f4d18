"""The preview figure: `cadence preview` wall time for one customer with a year of history,
start-up included, as a user runs it: with no daemon running (the command does everything:
imports, settings, rules, database), and answered by a running, idle daemon (the command
asks it over the control socket, `cadence/control.py`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from bench.figures import Figure
from bench.generate import PREVIEWED

#: a daemon counts as idle once its CPU time grows less than this over IDLE_WINDOW
IDLE_CPU = 0.05
IDLE_WINDOW = 2.0


def _preview(config: Path, env: Mapping[str, str], now: datetime) -> float:
    at = now.isoformat().replace("+00:00", "Z")
    command = ["-c", str(config), "preview", PREVIEWED, "--format", "json", "--at", at]
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cadence", *command],
        check=True,
        capture_output=True,
        env={**env, "SG_KEY": "SG.test-key"},
    )
    return time.perf_counter() - started


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_idle(proc: subprocess.Popen[bytes], log: Path, most: float) -> tuple[float, bool]:
    """Seconds until the daemon answers previews and has gone quiet (or `most` seconds have
    passed: a first pass over a ledger not yet planned takes minutes at 100k and most of an
    hour at 1M), and whether it had."""
    started = time.monotonic()
    while "answering previews on" not in log.read_text():
        if proc.poll() is not None or time.monotonic() - started > 120:
            raise RuntimeError(f"the daemon did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    last = _cpu_seconds(proc.pid)
    while time.monotonic() - started < most:
        time.sleep(IDLE_WINDOW)
        if proc.poll() is not None:
            raise RuntimeError(f"the daemon exited:\n{log.read_text()[-3000:]}")
        cpu = _cpu_seconds(proc.pid)
        if cpu - last < IDLE_CPU:
            return time.monotonic() - started, True
        last = cpu
    return time.monotonic() - started, False


def preview_time(
    config: Path, folder: Path, now: datetime, idle_wait: float, runs: int = 3
) -> list[Figure]:
    run_dir = folder / "run"
    run_dir.mkdir(mode=0o700, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CADENCE_")}
    env["XDG_RUNTIME_DIR"] = str(run_dir)
    cold = min(
        _preview(config, {**env, "CADENCE_NO_DAEMON_PREVIEW": "1"}, now) for _ in range(runs)
    )
    log = folder / "preview-daemon.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cadence", "-c", str(config), "run"],
            env={**env, "SG_KEY": "SG.test-key"},
            stdout=subprocess.DEVNULL,  # the console transport's emails
            stderr=out,
        )
    try:
        waited, idle = _wait_idle(proc, log, idle_wait)
        warm = min(_preview(config, env, now) for _ in range(runs))
    finally:
        proc.terminate()
        proc.wait(timeout=120)
    name = f"cadence preview wall time, {PREVIEWED} with a year of history (start-up included)"
    return [
        Figure(f"{name}, no daemon running", cold * 1000, "ms", "<= 250", note=f"best of {runs}"),
        Figure(
            f"{name}, answered by a running daemon",
            warm * 1000,
            "ms",
            "<= 250",
            note=f"best of {runs}; "
            + (
                f"the daemon idle (its first pass took {waited:.0f} s)"
                if idle
                else f"the daemon still busy with its first pass after {waited:.0f} s"
            ),
        ),
    ]
