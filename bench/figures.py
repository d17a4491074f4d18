"""Each figure of `python -m bench`, measured on a generated ledger, with its baseline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, text, update

from bench.launch import measured
from bench.lookalike import LookalikeProcess, sendgrid_config
from cadence.engine import plan_customer
from cadence.flows.planning import plan_due
from cadence.ledger.ledger import Ledger
from cadence.ledger.tables import customers
from cadence.model import Message
from cadence.rules import load_rules

REPO = Path(__file__).resolve().parents[1]
RULES = load_rules(REPO / "rules")


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    target: str = ""
    baseline: dict[str, float] = field(default_factory=dict)
    note: str = ""

    def met(self) -> bool | None:
        if not self.target:
            return None
        op, _, number = self.target.partition(" ")
        goal = float(number)
        return self.value >= goal if op == ">=" else self.value <= goal


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - started


def sample_ids(store: Ledger, m: int) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.scalars(select(customers.c.id).order_by(customers.c.id).limit(m)))


def planner_pure(store: Ledger, now: datetime, m: int) -> Figure:
    ids = sample_ids(store, m)
    contexts = []
    for i in range(0, len(ids), 500):
        contexts += store.planning.load_contexts(ids[i : i + 500], now, RULES.lookback())
    _, seconds = _timed(lambda: [plan_customer(c, RULES, now) for c in contexts])
    per = sum(len(c.pending) for c in contexts) / max(1, len(contexts))
    return Figure(
        "planner alone (no I/O), one core",
        len(contexts) / seconds,
        "customers/s",
        ">= 15000",
        note=f"{len(contexts)} customers, {per:.1f} open messages each",
    )


def _mark(store: Ledger, ids: list[str]) -> None:
    with store.engine.begin() as conn:
        for i in range(0, len(ids), 500):
            conn.execute(
                update(customers).where(customers.c.id.in_(ids[i : i + 500])).values(dirty=True)
            )


def submitted(
    mid: str, cid: str, at: datetime, *, transactional: bool = False, body: str | None = None
) -> tuple[Message, str]:
    """A message to submit: a receipt (billing, transactional) or a sales note, due at `at`.
    The receipt's content is what the official client sends in the dispatch baseline."""
    if transactional:
        message = Message(
            mid,
            cid,
            "billing",
            category="receipt",
            subject="Receipt",
            body_text=body or "Thanks for your payment.",
            transactional=True,
            send_after=at,
        )
    else:
        message = Message(mid, cid, "sales", subject="s", body_text="b", send_after=at)
    return message, "bench"


def plan_end_to_end(store: Ledger, now: datetime, m: int) -> Figure:
    ids = sample_ids(store, m)
    _mark(store, ids)
    planned, seconds = _timed(plan_due, store, RULES, now, "UTC")
    raw = raw_baseline(store, now, ids)
    fig = Figure(
        "re-plan end to end (read, plan, write decisions)",
        planned / seconds,
        "customers/s",
        "",
        {"raw database": raw},
        f"{planned} customers",
    )
    fig.note += f"; target: at least half the raw baseline ({raw / 2:.0f}/s)"
    fig.target = f">= {raw / 2:.0f}"
    return fig


def raw_baseline(store: Ledger, now: datetime, ids: list[str]) -> float:
    """Plain sqlite3/psycopg reading the same rows and writing as many decision rows."""
    since = now - RULES.lookback()
    started = time.perf_counter()
    raw = store.engine.raw_connection()
    try:
        cur = raw.cursor()
        ph = "?" if not store.is_postgres else "%s"
        n = 0
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            marks = ",".join([ph] * len(part))
            cur.execute(f"SELECT * FROM customers WHERE id IN ({marks})", part)
            cur.fetchall()
            false = "false" if store.is_postgres else "0"
            where = f"customer_id IN ({marks})"
            cur.execute(f"SELECT * FROM messages WHERE {where} AND final = {false}", part)
            pending = cur.fetchall()
            cur.execute(
                f"SELECT * FROM messages WHERE {where} AND kind = 'recorded' AND sent_at >= {ph}",
                [*part, since.replace(tzinfo=None) if not store.is_postgres else since],
            )
            cur.fetchall()
            rows = [("scheduled", "bench", str(r[0])) for r in pending]
            cur.executemany(
                f"UPDATE messages SET status = {ph}, reason = {ph} WHERE id = {ph}", rows
            )
            cur.executemany(
                "INSERT INTO decisions"
                " (message_id, customer_id, decided_at, status, reason, details) "
                f"VALUES ({ph}, {ph}, {ph}, {ph}, {ph}, {ph})",
                [
                    (
                        r[2],
                        "x",
                        now.replace(tzinfo=None) if not store.is_postgres else now,
                        "scheduled",
                        "bench",
                        "{}",
                    )
                    for r in rows
                ],
            )
            n += len(part)
        raw.rollback()  # measured, not kept
    finally:
        raw.close()
    return n / (time.perf_counter() - started)


def incremental(store: Ledger, now: datetime, n: int) -> list[Figure]:
    from cadence.flows.lifecycle import process_events

    plan_due(store, RULES, now, "UTC")  # settle
    if store.is_postgres:
        # the statistics autovacuum keeps: the ledger was generated seconds ago with every
        # customer dirty, and with those numbers PostgreSQL scans rather than use the index
        with store.engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    # an instant at which nothing changed and nothing is due (everything generated is due
    # from two hours before `now`): what a daemon's tick costs then, query for query
    quiet = now - timedelta(hours=3)
    ticks = []
    for _ in range(5):
        _, seconds = _timed(
            lambda: (
                process_events(store, RULES, quiet),
                plan_due(store, RULES, quiet, "UTC"),
                store.sending.claim_due(quiet, "bench", timedelta(minutes=5), 500),
                store.planning.next_wakeup(),
            )
        )
        ticks.append(seconds)
    idle = sorted(ticks)[len(ticks) // 2]
    figures = [
        Figure(
            "tick with nothing changed",
            idle * 1000,
            "ms",
            "<= 20",
            note=f"N = {n}; events, plan, claim, next wake-up; median of 5",
        )
    ]
    ids = sample_ids(store, 1000)
    for k in (100, 1000):
        store.ingest.add_messages(
            [submitted(f"k{k}-{i}", ids[i % len(ids)], now + timedelta(days=1)) for i in range(k)],
            now=now,
        )
        planned, seconds = _timed(plan_due, store, RULES, now, "UTC")
        figures.append(
            Figure(
                f"re-plan after {k} new messages",
                seconds * 1000,
                "ms",
                note=f"{planned} customers re-planned; {seconds / k * 1e6:.0f} us per message",
            )
        )
    return figures


def full_pass(folder: Path, url: str, now: datetime) -> list[Figure]:
    """A whole `cadence run --once` over the ledger at `url`, in its own process: every
    customer planned, every sweep run, everything due sent to the SendGrid look-alike (the
    transport a deployment uses: requests side by side, shared content many to a request).
    Its time from start to exit, its peak RSS, and how many emails went."""
    with LookalikeProcess() as sg:
        config = sendgrid_config(folder / "full-pass.yaml", url, sg, REPO / "rules")
        at = now.isoformat()
        run = measured(
            [sys.executable, "-m", "cadence", "-c", str(config), "run", "--once", "--now", at],
            report=folder / "measured.json",
            env={**os.environ, "SG_KEY": sg.api_key},
            stdout=subprocess.DEVNULL,
        )
    if run.code:
        raise RuntimeError(f"cadence run --once exited with {run.code}")
    engine = Ledger(url).engine
    try:
        with engine.connect() as conn:
            count = conn.execute(text("SELECT count(*) FROM customers")).scalar_one()
    finally:
        engine.dispose()
    return [
        Figure(
            "a full pass, `run --once` (plan everyone, sweep, send what is due)",
            count / run.seconds,
            "customers/s",
            note=f"{run.seconds:.1f} s start to exit, {count:,} customers, "
            f"{len(sg.arrivals):,} emails to the SendGrid look-alike",
        ),
        Figure("peak RSS of a full pass", run.peak_mb, "MB", "<= 200"),
    ]


def as_json(figures: list[Figure]) -> list[dict[str, Any]]:
    return [{**f.__dict__, "met": f.met()} for f in figures]


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str)
