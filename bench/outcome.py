"""`python -m bench outcome`: fewer emails, nothing worth reading lost (issue 22).

A seeded month of a B2B company's mail (`bench.month`) is fed to the daemon's own passes
(`cadence.flows.timeline.run_between`, what `cadence simulate` runs) on a ledger in memory,
each record at the moment it reaches cadence, under three policies:

- send everything: no limit, suppression, merge or hold, only the send windows;
- a dropping cap, Braze-style: one limit, `max: K per: 7d over: drop`, K the weekly maximum
  of the measured rules;
- the rules of a folder (the repository's `rules/` by default, `--rules DIR`).

Each keeps the folder's priorities, `max_delay`, send windows and playbooks, so the three
differ only in the fatigue rules. For each, the three figures over the measured month, as
`cadence.report.outcome` defines them for `cadence report` too:

- emails per customer per week, p50 and p95 (what cadence sent plus what the CSMs wrote,
  for every week a person was a customer);
- transactional mail on time: the share of transactional messages sent within 5 minutes of
  their `send_after`;
- distinct content delivered: of the non-transactional messages submitted (playbooks'
  check-ins included, internal alerts not), leaving out the truly redundant ones (the same
  topic as an email a person wrote to that customer within the 14 days before), the share
  sent before expiring, alone or inside a digest.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, fields
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.month import Month, month
from bench.outcome_report import POLICIES, Result, goals, means, print_report
from cadence.report import outcome

REPO = Path(__file__).resolve().parents[1]


# -- the three policies ----------------------------------------------------------------------


def weekly_maximum(rules_dir: Path) -> int:
    """The weekly maximum the rules set for all mail: the smallest `max` of a limit that
    counts every message of one customer over 7 days (rolling or a calendar week)."""
    from cadence.rules import load_rules
    from cadence.rules.model import CalendarUnit, Filter, Scope

    rules = load_rules(rules_dir)
    weekly = [
        lim.max
        for lim in rules.limits
        if lim.max is not None
        and lim.filter == Filter()
        and lim.scope is Scope.CUSTOMER
        and lim.when is None
        and (lim.per == timedelta(days=7) or lim.calendar is CalendarUnit.WEEK)
    ]
    if not weekly:
        raise SystemExit(f"{rules_dir}: no weekly limit over all mail, so no cap to compare")
    return min(weekly)


def _kept(rules_dir: Path) -> dict[str, Any]:
    """What every policy keeps of the folder: priorities, max_delay, send windows and
    playbooks (the same mail is made and may go at the same hours under each)."""
    from ruamel.yaml import YAML

    kept: dict[str, Any] = {"send_windows": [], "playbooks": []}
    for path in sorted(rules_dir.glob("*.yaml")):
        data = YAML(typ="safe").load(path.read_text()) or {}
        for key in ("priorities", "max_delay"):
            if key in data:
                kept[key] = data[key]
        for key in ("send_windows", "playbooks"):
            kept[key] += data.get(key) or []
    return kept


def policy_folders(rules_dir: Path, work: Path, cap: int) -> dict[str, Path]:
    """A rules folder per policy: the first two written under `work` (JSON is YAML)."""
    kept = _kept(rules_dir)
    folders = {}
    for name, extra in (
        ("send everything", {}),
        (
            "dropping cap",
            {"limits": [{"name": "weekly-cap", "max": cap, "per": "7d", "over": "drop"}]},
        ),
    ):
        folder = work / name.replace(" ", "-")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "policy.yaml").write_text(json.dumps({**kept, **extra}, indent=2))
        folders[name] = folder
    folders["rules"] = rules_dir
    return folders


# -- one run ---------------------------------------------------------------------------------


def _feed(store: Any, folder: Path, at: datetime, batch: dict[str, list[dict[str, Any]]]) -> None:
    """One feed's records into the ledger through the importers a team uses (JSON Lines,
    every record checked), customers first."""
    from cadence import ingest

    steps = (
        ("customers", ingest.import_customers),
        ("recorded", ingest.record_messages),
        ("messages", ingest.submit_messages),
        ("events", ingest.ingest_events),
    )
    for kind, load in steps:
        records = batch[kind]
        if not records:
            continue
        path = folder / f"{kind}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        report = load(store, str(path), now=at)
        if report.errors:
            raise RuntimeError(f"{kind} at {at}: " + "; ".join(map(str, report.errors[:5])))


def run_policy(m: Month, policy: str, rules_dir: Path) -> Result:
    """The passes over the whole run under the rules in `rules_dir`, the records fed in
    every two hours (`Month.batches`): a pass at each feed, and one at every moment something
    is due in between, as a daemon ticking all the while would have run them."""
    from cadence.app import UNSUBSCRIBE_SECRET, App
    from cadence.config import load_settings
    from cadence.delivery.transports import RecordingTransport
    from cadence.flows.timeline import SCRATCH_SECRET, run_between
    from cadence.ledger import scratch
    from cadence.rules import load_rules

    started, cpu = time.perf_counter(), time.process_time()
    # the feeds' input files in memory where there is a tmpfs
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="cadence-outcome-", dir=shm) as tmp:
        work = Path(tmp)
        config = work / "cadence.yaml"
        config.write_text(
            f"rules_dir: {rules_dir}\ntemplates_dir: {REPO / 'templates'}\n"
            "unsubscribe: {secret_env: null}\n"
        )
        # as `simulate` does: a ledger in memory, a transport that only records, links
        # signed with a secret that unsubscribes nobody
        store = scratch.scratch_store()
        store.reads.set_meta(UNSUBSCRIBE_SECRET, SCRATCH_SECRET)
        app = App(load_settings(config, environ={}), _store=store, _rules=load_rules(rules_dir))
        transport = RecordingTransport()
        batches = m.batches()
        passes = 0
        try:
            for i, (at, batch) in enumerate(batches):
                _feed(store, work, at, batch)
                # a pass now, then one at every due moment until the next feed
                until = batches[i + 1][0] if i + 1 < len(batches) else m.until
                passes += run_between(app, at, until - timedelta(microseconds=1), transport)
            result = measure(store, m, policy)
        finally:
            app.close()
    result.passes = passes
    result.seconds = time.perf_counter() - started
    result.cpu = time.process_time() - cpu
    return result


# -- the figures -----------------------------------------------------------------------------


def _rows(store: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from sqlalchemy import select

    from cadence.ledger.tables import emails, messages

    with store.engine.connect() as conn:
        msgs = [
            dict(r)
            for r in conn.execute(
                select(
                    messages.c.id,
                    messages.c.customer_id,
                    messages.c.kind,
                    messages.c.category,
                    messages.c.topic,
                    messages.c.human,
                    messages.c.transactional,
                    messages.c.channel,
                    messages.c.planned,
                    messages.c.recipient,
                    messages.c.send_after,
                    messages.c.sent_at,
                    messages.c.status,
                    messages.c.rule,
                    messages.c.reason,
                )
            ).mappings()
        ]
        sent = [
            dict(r)
            for r in conn.execute(
                select(
                    emails.c.id,
                    emails.c.customer_id,
                    emails.c.members,
                    emails.c.sent_at,
                    emails.c.to_owner,
                ).where(emails.c.status == "sent")
            ).mappings()
        ]
    return msgs, sent


def measure(store: Any, m: Month, policy: str) -> Result:
    """The three figures of the measured month, as `cadence report` computes them
    (`cadence.report.outcome`), each person's weeks counted from their signup."""
    msgs, sent = _rows(store)
    o = outcome.measure(msgs, sent, m.start, m.end, m.signups)
    shared = {f.name: getattr(o, f.name) for f in fields(Result) if hasattr(o, f.name)}
    return Result(policy=policy, seed=m.seed, size=m.size, passes=0, seconds=0.0, cpu=0.0, **shared)


def _task(args: tuple[int, int, str, str]) -> Result:
    seed, size, policy, folder = args
    return run_policy(month(seed, size), policy, Path(folder))


# -- the goal --------------------------------------------------------------------------------


# -- the command -----------------------------------------------------------------------------


def main(argv: Sequence[str]) -> None:
    from bench.__main__ import machine
    from cadence.rules import load_rules

    parser = argparse.ArgumentParser(
        prog="python -m bench outcome", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--sizes", default="300,600", help="people per generated month")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--rules", type=Path, default=REPO / "rules", help="the rules measured")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs in parallel")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--report", type=Path, help="print the tables of a run saved with --json; run nothing"
    )
    args = parser.parse_args(list(argv))
    if args.report:
        saved = json.loads(args.report.read_text())
        names = {f.name for f in fields(Result)}
        again = [Result(**{k: v for k, v in r.items() if k in names}) for r in saved["runs"]]
        print_report(saved, again, goals(again))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    source = args.rules.resolve()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cadence-policies-") as tmp:
        # every run measures the rules as they were when the command started, though the
        # folder may change while it runs (someone rewriting the starter rules)
        rules_dir = Path(tmp) / "measured"
        rules_dir.mkdir()
        for path in source.glob("*.yaml"):
            shutil.copy2(path, rules_dir / path.name)
        version = load_rules(rules_dir).version
        cap = weekly_maximum(rules_dir)
        folders = policy_folders(rules_dir, Path(tmp), cap)
        # the largest runs first, so the pool's last minutes are not one long run alone
        tasks = sorted(
            (
                (seed, size, p, str(folders[p]))
                for size in sizes
                for seed in seeds
                for p in POLICIES
            ),
            key=lambda t: -t[1],
        )
        results: list[Result] = []
        with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for r in pool.map(_task, tasks):
                print(
                    f"bench: outcome, {r.size} people, seed {r.seed}, {r.policy}: "
                    f"{r.passes} passes, {r.seconds:.1f} s ({r.cpu:.1f} s of CPU)",
                    file=sys.stderr,
                    flush=True,
                )
                results.append(r)
    seconds = time.perf_counter() - started
    header = {
        "command": " ".join(["python -m bench outcome", *argv]),
        "machine": machine(),
        "n": sizes,
        "seeds": seeds,
        "rules": str(source),
        "rules_version": version,
        "cap": cap,
        "seconds": round(seconds, 1),
        "jobs": args.jobs,
        # other work on the machine stretches the wall time: the 1-minute load at the end
        "load": round(os.getloadavg()[0], 1),
    }
    checked = goals(results)
    if args.json:
        print(
            json.dumps(
                {
                    **header,
                    "runs": [
                        {**asdict(r), "on_time": r.on_time, "delivered": r.delivered}
                        for r in results
                    ],
                    "means": means(results),
                    "goal": [{**asdict(g), "met": g.met} for g in checked],
                },
                indent=2,
                default=str,
            )
        )
        return
    print_report(header, results, checked)
