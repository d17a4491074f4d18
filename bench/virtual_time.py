"""The engine over virtual time: `cadence simulate` and `cadence demo`, each timed as a user
runs it (a process of its own, from start to exit), with its peak memory.

`simulate` runs over a ledger of its own (the seeded generator, `size` customers, 14 days from
the ledger's now), so the figure does not depend on what the other figures did to theirs.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from bench.figures import REPO, Figure
from bench.generate import generate
from bench.launch import measured

DAYS = 14


def _timed_child(args: list[str], cwd: Path) -> tuple[float, float]:
    """Seconds from start to exit, and the child's own peak RSS in MB (`bench.launch`)."""
    with tempfile.TemporaryFile() as err:
        run = measured(
            [sys.executable, "-m", "cadence", *args],
            report=cwd / "measured.json",
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        if run.code:
            err.seek(0)
            text = err.read().decode()
            raise RuntimeError(f"cadence {' '.join(args)} exited with {run.code}: {text[-2000:]}")
    return run.seconds, run.peak_mb


def simulate_time(folder: Path, size: int, now: datetime) -> list[Figure]:
    """`cadence simulate --format json` over `size` customers and 14 days."""
    work = Path(tempfile.mkdtemp(prefix="simulate-", dir=folder))
    url = f"sqlite:///{work / 'ledger.db'}"
    now = generate(url, size, now)
    (work / "cadence.yaml").write_text(
        f"database_url: {url}\nrules_dir: {REPO / 'rules'}\ntemplates_dir: {REPO / 'templates'}\n"
    )
    end = now + timedelta(days=DAYS)
    seconds, mb = _timed_child(
        ["simulate", "--start", now.isoformat(), "--end", end.isoformat(), "--format", "json"],
        work,
    )
    what = f"{size:,} customers, {DAYS} days"
    return [
        Figure(f"simulate, {what} (start to exit)", seconds, "s"),
        Figure(f"simulate, {what}: peak RSS", mb, "MB"),
    ]


def demo_time(folder: Path) -> list[Figure]:
    """`cadence demo` in a folder of its own: four weeks of virtual time."""
    work = Path(tempfile.mkdtemp(prefix="demo-", dir=folder))
    seconds, mb = _timed_child(["demo", str(work / "cadence-demo")], work)
    return [
        Figure("cadence demo, four weeks (start to exit)", seconds, "s", "<= 60"),
        Figure("cadence demo: peak RSS", mb, "MB"),
    ]
