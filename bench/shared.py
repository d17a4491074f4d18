"""`python -m bench shared [--size 10k] [--processes 3] [--first-pass] [--json]`: several
`cadence run --once` processes on one PostgreSQL (issue 25's first figure).

A seeded ledger of N customers is generated once into a template database; each run gets a
fresh copy of it. On one copy, `--processes` processes of `cadence run --once --now <the
ledger's now>` start together; on another, one process alone. For each run: the wall time
from the first start to the last exit, and per process the customers it planned and the
emails it sent, as its own summary line says (`planned N customers; sent M`). The emails go
to the console transport, its output into a file of the temporary folder (the page cache,
never an fsync), so the figure is planning and dispatch, not a disk.

The generated ledger has every customer dirty but no rules adopted yet, so each process's
first step would be `adopt_rules`: an UPDATE of every customer in the table's order, which,
racing another process marking some of them dirty in id order (its sweep), can end in a
deadlock that PostgreSQL breaks by failing one of them (seen once in a few runs). The
template adopts the rules first, as a ledger a daemon has run on has; with `--first-pass` it
does not, and a process that fails is reported with its error.

The processes are the `cadence` that this `bench` sits beside (`REPO`), so a git worktree of
an older commit with this file copied into its `bench/` measures that commit; the output
names the source it ran.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SUMMARY = re.compile(r"planned (\d+) customers?; sent (\d+)")


@dataclass
class Process:
    planned: int
    sent: int
    seconds: float  # from the run's first start to this process's exit
    cpu: float  # its own user and system CPU seconds (the database's are not in it)
    error: str = ""  # the last line it wrote to stderr, when it failed


@dataclass
class Run:
    processes: list[Process]
    seconds: float  # from the first start to the last exit
    ledger: dict[str, int] = field(default_factory=dict)  # see `_ledger`


def _copy(template: str) -> tuple[str, str]:
    """A fresh database copied from the generated one (a file copy, seconds faster than
    generating again): every run starts from the same ledger."""
    import uuid

    import psycopg

    from bench.__main__ import PG_ADMIN

    name = f"cadence_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}", name


def _config(folder: Path, url: str, tag: str) -> Path:
    path = folder / f"{tag}.yaml"
    path.write_text(
        f"database_url: {url}\n"
        f"rules_dir: {REPO / 'rules'}\n"
        f"templates_dir: {REPO / 'templates'}\n"
        "transport: {kind: console}\n"
    )
    return path


def _ledger(url: str, now: str) -> dict[str, int]:
    """The ledger after a run: its emails by status, and the customers still wanting a plan
    at `now` (none, when the processes between them planned everyone)."""
    from datetime import datetime

    from sqlalchemy import text

    from cadence.ledger.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT status, count(*) FROM emails GROUP BY status"))
            out = {str(s): int(c) for s, c in rows}
            out["customers still to plan"] = int(
                conn.scalar(
                    text("SELECT count(*) FROM customers WHERE dirty OR next_plan_at <= :now"),
                    {"now": datetime.fromisoformat(now)},
                )
                or 0
            )
            return out
    finally:
        engine.dispose()


def run_processes(folder: Path, url: str, now: str, count: int, tag: str) -> Run:
    """`count` processes of `cadence run --once --now NOW` started back to back (a few
    milliseconds apart: each takes a second or so importing before it touches the ledger)."""
    config = _config(folder, url, tag)
    outs = [(folder / f"{tag}-{k}.out", folder / f"{tag}-{k}.err") for k in range(count)]
    command = [sys.executable, "-m", "cadence", "-c", str(config), "run", "--once", "--now", now]
    started = time.perf_counter()
    children = []
    for out, err in outs:
        with out.open("w") as stdout, err.open("w") as stderr:
            children.append(subprocess.Popen(command, cwd=REPO, stdout=stdout, stderr=stderr))
    finished: dict[int, float] = {}
    cpu: dict[int, float] = {}
    while len(finished) < count:
        pid, _, usage = os.wait4(-1, 0)
        finished[pid] = time.perf_counter() - started
        cpu[pid] = usage.ru_utime + usage.ru_stime
    processes = []
    for child, (out, err) in zip(children, outs, strict=True):
        child.returncode = 0  # reaped above: Popen must not wait for it again
        lines = out.read_text().splitlines()
        got = SUMMARY.search(lines[-1]) if lines else None
        if got is None:
            errors = err.read_text().strip().splitlines() or ["no summary line, nothing on stderr"]
            processes.append(Process(0, 0, finished[child.pid], cpu[child.pid], errors[-1]))
        else:
            processes.append(Process(int(got[1]), int(got[2]), finished[child.pid], cpu[child.pid]))
    return Run(processes, max(finished.values()), _ledger(url, now))


def analyze(url: str) -> None:
    """The statistics autovacuum would have gathered by the time a daemon runs: without
    them, on a ledger generated seconds ago, PostgreSQL scans where it would use an index.
    The copies made from the template keep them."""
    from sqlalchemy import text

    from cadence.ledger.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    finally:
        engine.dispose()


def adopt(folder: Path, url: str) -> None:
    """The rules and templates adopted into the ledger, as `run_pass` adopts them on its
    first pass: a process then starts planning at once (every generated customer is dirty)."""
    from cadence.app import open_app
    from cadence.flows.passes import adopt_rules, live_version

    app = open_app(_config(folder, url, "adopt"))
    try:
        adopt_rules(app.store, live_version(app.rules(), app.renderer()))
    finally:
        app.close()


def measure(n: int, count: int, folder: Path, first_pass: bool) -> tuple[str, dict[str, Run]]:
    from bench.__main__ import _drop, _pg_database
    from bench.generate import generate

    template_url, template = _pg_database()
    names = [template]
    try:
        print(f"bench: generating {n:,} customers...", end="", file=sys.stderr, flush=True)
        started = time.perf_counter()
        now = generate(template_url, n).isoformat()
        print(f" {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        if not first_pass:
            adopt(folder, template_url)
        analyze(template_url)
        urls = {}
        for k in (count, 1):
            urls[k], name = _copy(template)
            names.append(name)
        runs = {}
        for k in (count, 1):
            label = "1 process" if k == 1 else f"{k} processes"
            print(f"bench: {label} at once...", end="", file=sys.stderr, flush=True)
            runs[label] = run_processes(folder, urls[k], now, k, f"p{k}")
            print(f" {runs[label].seconds:.1f} s", file=sys.stderr, flush=True)
        return now, runs
    finally:
        for name in names:
            _drop(name)


def _source() -> str:
    """Which cadence the processes ran: its folder and commit."""
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"{REPO} at {commit or 'an unknown commit'}"


def main(argv: Sequence[str]) -> None:
    from bench.__main__ import SIZES, machine

    parser = argparse.ArgumentParser(
        prog="python -m bench shared", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--size", default="10k", choices=SIZES)
    parser.add_argument("--processes", type=int, default=3, help="processes started together")
    parser.add_argument(
        "--first-pass",
        action="store_true",
        help="leave the rules unadopted: each process starts by marking every customer dirty",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(list(argv))
    if args.processes < 2:
        parser.error("--processes: at least 2 (one process alone is always measured)")
    n = SIZES[args.size]
    with tempfile.TemporaryDirectory(prefix="cadence-shared-") as tmp:
        now, runs = measure(n, args.processes, Path(tmp), args.first_pass)
    header: dict[str, Any] = {
        "command": " ".join(["python -m bench shared", *argv]),
        "machine": machine(),
        "n": n,
        "now": now,
        "cadence": _source(),
    }
    if args.json:
        print(json.dumps({**header, "runs": {k: asdict(r) for k, r in runs.items()}}, indent=2))
        return
    print(f"{header['command']}  N = {n:,}  --now {now}  cadence: {header['cadence']}")
    alone = runs["1 process"].seconds
    for label, run in runs.items():
        ratio = "" if label == "1 process" else f" ({run.seconds / alone:.2f}x one process)"
        emails = ", ".join(f"{c:,} {s}" for s, c in sorted(run.ledger.items()))
        print(f"{label}: {run.seconds:.1f} s to the last exit{ratio}; after: {emails}")
        for k, p in enumerate(run.processes):
            did = f"FAILED: {p.error}" if p.error else f"planned {p.planned:,}, sent {p.sent:,}"
            print(f"  process {k}: {did}, exit {p.seconds:.1f} s, CPU {p.cpu:.1f} s")
