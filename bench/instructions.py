"""`python -m bench.instructions [--size 1k] [--days 14] [--json]`: `cadence simulate` counted
in instructions rather than seconds, for a machine whose wall times spread too far to compare
two versions (docs/performance.md, "counted in instructions").

Runs `cadence simulate --format json` over a seeded ledger (`bench.generate`, as the simulate
figure of `python -m bench` does) under valgrind's cachegrind with its cache model off, which
counts the instructions each process ran: the same run gives the same count within 0.1%, on a
busy machine too. `simulate` forks a process for each part of a large ledger; each writes its
own count. Printed: the start-up and end (the first process), each part, the longest path
(what a user waits for: the first process and its longest part) and the total.

Needs valgrind (`apt-get install valgrind`); it runs the command about 15 times slower.
`--python` runs another checkout's code on the same ledger (its own virtual environment's
python, or this one with `PYTHONPATH` set to it), so two versions with the same schema are
compared on one input.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from bench.figures import REPO
from bench.generate import generate

SIZES = {"1k": 1_000, "10k": 10_000}
_SUMMARY = re.compile(r"^summary: (\d+)$", re.MULTILINE)


def counted(command: list[str], cwd: Path) -> list[int]:
    """The instructions each process of `command` ran, the first process first."""
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    out = Path(tempfile.mkdtemp(prefix="counts-", dir=cwd))  # this run's files alone
    run = subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            f"--cachegrind-out-file={out}/cg.%p",
            *command,
        ],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if run.returncode:
        raise SystemExit(f"{' '.join(command)} exited with {run.returncode}: {run.stderr[-2000:]}")
    # process ids grow: the first process (the one the command started) has the lowest
    files = sorted(out.glob("cg.*"), key=lambda p: int(p.suffix[1:]))
    counts = []
    for file in files:
        found = _SUMMARY.search(file.read_text())
        if found is None:
            raise SystemExit(f"{file}: no summary line; did valgrind finish?")
        counts.append(int(found[1]))
    return counts


@dataclass(frozen=True)
class Counts:
    """One `simulate` run's instructions, by process."""

    command: str
    customers: int
    days: int
    first: int  # the process the command started: start-up, then collecting the parts
    parts: tuple[int, ...]  # each forked part (none: the ledger was run in one process)

    @property
    def longest_path(self) -> int:
        return self.first + max(self.parts, default=0)

    @property
    def total(self) -> int:
        return self.first + sum(self.parts)

    def as_json(self) -> dict[str, object]:
        return {**asdict(self), "longest_path": self.longest_path, "total": self.total}


def simulate_counts(python: str, size: int, days: int, folder: Path) -> Counts:
    url = f"sqlite:///{folder / 'ledger.db'}"
    now = generate(url, size)
    (folder / "cadence.yaml").write_text(
        f"database_url: {url}\nrules_dir: {REPO / 'rules'}\ntemplates_dir: {REPO / 'templates'}\n"
    )
    end = now + timedelta(days=days)
    command = [python, "-m", "cadence", "simulate", "--start", now.isoformat()]
    command += ["--end", end.isoformat(), "--format", "json"]
    first, *parts = counted(command, folder)
    return Counts(" ".join(["python", *command[1:]]), size, days, first, tuple(parts))


def _billions(n: int) -> str:
    return f"{n / 1e9:.2f} billion"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--size", choices=SIZES, default="1k")
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--python", default=sys.executable, help="the python that runs cadence")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cadence-instructions-") as tmp:
        counts = simulate_counts(args.python, SIZES[args.size], args.days, Path(tmp))
    if args.json:
        print(json.dumps(counts.as_json(), indent=2))
        return
    print(f"{counts.command} ({counts.customers:,} customers, {counts.days} days)")
    print(f"  start-up and end (first process): {_billions(counts.first)}")
    for i, n in enumerate(counts.parts, 1):
        print(f"  part {i}: {_billions(n)}")
    print(f"  longest path: {_billions(counts.longest_path)}")
    print(f"  total: {_billions(counts.total)}")


if __name__ == "__main__":
    main(sys.argv[1:])
