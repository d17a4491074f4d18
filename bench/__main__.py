"""`python -m bench [--size 10k] [--db sqlite,postgresql] [--json]`: cadence's figures.

Generates a seeded ledger of N customers (per database), measures each figure next to its
baseline, and prints the command line, the machine, the database and N with every figure.

`python -m bench outcome [--sizes 300,600] [--seeds 1,2,3] [--rules DIR] [--json]`: the
outcome figure (`bench.outcome`): emails per customer per week, transactional mail on time
and distinct content delivered over a generated month, under three policies.

`python -m bench shared [--size 10k] [--processes 3] [--first-pass] [--json]`: several
`cadence run --once` processes at once on one PostgreSQL next to one alone (`bench.shared`):
the wall time and what each process planned and sent.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from bench import delivery as D
from bench import figures as F
from bench.generate import generate
from bench.preview import preview_time
from bench.virtual_time import demo_time, simulate_time

SIZES = {"1k": 1_000, "10k": 10_000, "100k": 100_000, "1m": 1_000_000}
T = TypeVar("T")
PG_ADMIN = os.environ.get("CADENCE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def machine() -> dict[str, object]:
    mem = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as info:
        for line in info:
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) // 1024
    return {
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_mb": mem,
        "system": platform.platform(),
    }


def _pg_database() -> tuple[str, str]:
    import psycopg

    name = f"cadence_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}", name


def _drop(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _ledger_copy(db: str, url: str, folder: Path, pg_name: str | None) -> tuple[str, str | None]:
    """A copy of the generated ledger, for a measurement that must not change what the
    others measure: a file copied through SQLite's backup, or a database made from the other
    as its template. Returns its URL and, on PostgreSQL, its name (to drop)."""
    if db == "sqlite":
        import sqlite3

        target = folder / "full-pass.db"
        target.unlink(missing_ok=True)
        source = sqlite3.connect(url.removeprefix("sqlite:///"))
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
        finally:
            source.close()
            copy.close()
        return f"sqlite:///{target}", None
    import psycopg

    assert pg_name is not None
    name = f"{pg_name}_pass"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_name}"')
    return url.rsplit("/", 1)[0] + f"/{name}", name


def _step(label: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one measurement, saying on stderr what runs and how long it took: a 100k run
    takes minutes, and the figures go to stdout (JSON for tools)."""
    print(f"bench: {label}...", end="", file=sys.stderr, flush=True)
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    print(f" {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return result


def run_database(
    db: str,
    n: int,
    folder: Path,
    sample: int,
    only: set[str] | None = None,
    simulate_size: int = 1_000,
) -> list[F.Figure]:
    from cadence import collector
    from cadence.ledger.db import upgrade
    from cadence.ledger.ledger import Ledger

    pg_name = None
    reuse = False
    if db == "sqlite":
        path = folder / f"bench-{n}.db"
        reuse = path.exists()
        url = f"sqlite:///{path}"
    else:
        url, pg_name = _pg_database()
    try:
        # The ledger's `now` is the present, as in a live deployment: the preview figure's
        # daemon runs on the real clock, and after a full pass at `now` it finds little to
        # do (on a ledger a week old it would plan and send most of it again before going
        # idle). Generation is seeded: the same ledger, relative to its `now`.
        stamp = folder / f"bench-{n}.now"
        if reuse and stamp.exists():
            now = datetime.fromisoformat(stamp.read_text().strip())  # a kept --workdir ledger
            upgrade(url)  # made by an older cadence, perhaps
        else:
            start = datetime.now(UTC).replace(second=0, microsecond=0)
            now = _step(f"{db}: generating {n:,} customers", generate, url, n, start)
            if db == "sqlite":
                stamp.write_text(now.isoformat())
        config = folder / f"{db}.yaml"
        config.write_text(
            f"database_url: {url}\n"
            f"rules_dir: {F.REPO / 'rules'}\n"
            f"templates_dir: {F.REPO / 'templates'}\n"
            # the full pass of the memory figure hands its emails to the console (stdout goes
            # to /dev/null): the daemon's memory, not a file writer's fsyncs
            "transport: {kind: console}\n"
            # the preview figure runs a daemon: any free port for its HTTP side
            "http: {listen: '127.0.0.1:0'}\n"
        )
        store = Ledger(url)
        collector.settle()  # as a cadence process does when its store opens
        m = min(sample, n)

        def full_pass() -> list[F.Figure]:
            store.engine.dispose()  # a template database must have no one connected
            copy_url, copy_name = _ledger_copy(db, url, folder, pg_name)
            try:
                return F.full_pass(folder, copy_url, now)
            finally:
                if copy_name:
                    _drop(copy_name)

        steps: list[tuple[str, str, Callable[[], F.Figure | list[F.Figure]]]] = [
            # first, on a copy of the ledger as generated: the same work on either database
            ("memory", "a full pass on a copy of the ledger", full_pass),
            ("planner", "planner alone", lambda: F.planner_pure(store, now, m)),
            ("replan", "re-plan end to end", lambda: F.plan_end_to_end(store, now, m)),
            ("incremental", "incremental cost", lambda: F.incremental(store, now, n)),
        ]

        # the preview figure runs a daemon on the real clock: it sweeps and re-plans what is
        # due, sending mail that the dispatch figure would then miss. So it comes last, after
        # a full pass (not measured) has settled the ledger, so that the daemon soon goes idle
        def settled_preview() -> list[F.Figure]:
            F.full_pass(folder, url, now)
            return preview_time(config, folder, now, 300.0)

        last = [("preview", "preview", settled_preview)]
        if db == "sqlite":
            steps += [
                (
                    "simulate",
                    f"simulate over {simulate_size:,} customers",
                    lambda: simulate_time(folder, simulate_size, now),
                ),
                ("demo", "cadence demo", lambda: demo_time(folder)),
                (
                    "dispatch",
                    "dispatch, one daemon",
                    lambda: [
                        D.dispatch_rate(store, url, folder, now, min(5000, n)),
                        D.dispatch_rate(store, url, folder, now, min(5000, n), unique=True),
                    ],
                ),
                ("latency", "latency", lambda: D.latency(folder)),
            ]
        else:
            steps.append(
                (
                    "dispatch",
                    "dispatch, 3 daemons",
                    lambda: D.dispatch_rate(store, url, folder, now, min(15000, n), daemons=3),
                )
            )
        # a provider that answers in 100 ms, as a real API does: what a daemon's requests in
        # flight are worth, and whether three daemons go three times as fast
        steps.append(
            (
                "slow-provider",
                "dispatch to a provider answering in 100 ms",
                lambda: D.slow_provider(store, url, folder, now, n),
            )
        )
        out: list[F.Figure] = []
        for key, label, measure in steps + last:
            if only and key not in only:
                continue
            got = _step(f"{db}: {label}", measure)
            out += got if isinstance(got, list) else [got]
        store.close()
        return out
    finally:
        if pg_name:
            _drop(pg_name)


def main() -> None:
    if sys.argv[1:2] == ["outcome"]:
        from bench.outcome import main as outcome

        outcome(sys.argv[2:])
        return
    if sys.argv[1:2] == ["shared"]:
        from bench.shared import main as shared

        shared(sys.argv[2:])
        return
    from cadence import collector

    # the figures measured in this process (the planner, re-planning) run under the
    # collector's settings a cadence process has
    collector.collect_less()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--size", default="10k", choices=SIZES)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument(
        "--sample", type=int, default=10_000, help="customers re-planned per figure"
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep the SQLite ledger here and reuse it on the next run (a 1M ledger takes "
        "minutes to generate); without it, a temporary folder removed at the end",
    )
    parser.add_argument(
        "--only",
        help="measure only these (comma-separated): planner, replan, incremental, preview, "
        "simulate, demo, dispatch, slow-provider, memory, latency",
    )
    parser.add_argument(
        "--simulate-size",
        default="1k",
        choices=SIZES,
        help="customers in the simulate figure's own ledger (it runs 14 days of passes)",
    )
    args = parser.parse_args()
    n = SIZES[args.size]
    results: dict[str, list[F.Figure]] = {}
    folder = args.workdir or Path(tempfile.mkdtemp(prefix="cadence-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for db in args.db.split(","):
            only = set(args.only.split(",")) if args.only else None
            results[db] = run_database(db, n, folder, args.sample, only, SIZES[args.simulate_size])
    finally:
        if not args.workdir:
            shutil.rmtree(folder, ignore_errors=True)
    header = {"command": " ".join(["python -m bench", *sys.argv[1:]]), "machine": machine(), "n": n}
    if args.json:
        print(F.dumps({**header, "figures": {db: F.as_json(fs) for db, fs in results.items()}}))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{header['command']}[/bold]  N = {n:,}  machine: {header['machine']}")
    for db, figs in results.items():
        table = Table(title=f"{db}", title_justify="left")
        for col in ("figure", "value", "target", "met", "baseline", "note"):
            table.add_column(col, overflow="fold")
        for f in figs:
            base = "; ".join(f"{k}: {v:,.0f}" for k, v in f.baseline.items())
            met = {True: "[green]yes[/green]", False: "[red]no[/red]", None: ""}[f.met()]
            table.add_row(f.name, f"{f.value:,.1f} {f.unit}", f.target, met, base, f.note)
        console.print(table)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
