"""Each figure of `python -m bench`, measured on a generated ledger, with its baseline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, text, update

from bench.generate import generate
from bench.launch import measured
from cadence.engine import plan_customer
from cadence.flows.planning import plan_due
from cadence.ledger.ledger import Ledger
from cadence.ledger.tables import customers, messages
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


def _message(
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


def _sendgrid_config(
    path: Path, url: str, sg: _Lookalike, rules_dir: Path, extra: str = ""
) -> Path:
    """A cadence.yaml sending through the look-alike (the key in $SG_KEY)."""
    path.write_text(
        f"database_url: {url}\ntemplates_dir: {REPO / 'templates'}\n"
        f"rules_dir: {rules_dir}\n"
        "transport:\n  kind: sendgrid\n"
        f"  sendgrid: {{api_host: '{sg.url}', api_key_env: SG_KEY}}\n" + extra
    )
    return path


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
            [_message(f"k{k}-{i}", ids[i % len(ids)], now + timedelta(days=1)) for i in range(k)],
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
    with _Lookalike() as sg:
        config = _sendgrid_config(folder / "full-pass.yaml", url, sg, REPO / "rules")
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


class _Lookalike:
    """The SendGrid look-alike in a process of its own, so it does not share our GIL."""

    api_key = "SG.test-key"

    def __init__(self, latency_ms: float = 0) -> None:
        self.latency_ms = latency_ms

    def __enter__(self) -> _Lookalike:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.lookalike", str(self.latency_ms)],
            cwd=REPO,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        return self

    def __exit__(self, *exc: object) -> None:
        out, _ = self.proc.communicate("", timeout=30)
        self.arrivals: dict[str, float] = dict(json.loads(out.strip() or "[]"))


def dispatch_rate(
    store: Ledger,
    url: str,
    folder: Path,
    now: datetime,
    emails: int,
    daemons: int = 1,
    *,
    unique: bool = False,
    latency_ms: float = 0,
) -> Figure:
    """Emails/s from `daemons` dispatching processes sharing one ledger, each with its own
    HTTP connections to the look-alike, next to the official client sending one by one.
    The receipts share their content, so cadence sends many in one request (one
    personalization each); with `unique`, each has a body of its own and goes alone."""
    ids = sample_ids(store, emails)
    # a run of its own: a kept --workdir ledger holds the last run's receipts
    tag = f"{daemons}{'u' if unique else ''}-{uuid.uuid4().hex[:6]}"
    store.ingest.add_messages(
        [
            _message(
                f"tx-{tag}-{i}",
                cid,
                now,
                transactional=True,
                body=f"Thanks for your payment #{i}." if unique else None,
            )
            for i, cid in enumerate(ids)
        ],
        now=now,
    )
    plan_due(store, RULES, now, "UTC")
    with _Lookalike(latency_ms) as sg:
        config = _sendgrid_config(folder / f"dispatch-{tag}.yaml", url, sg, REPO / "rules")
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.dispatch_worker",
                    str(config),
                    now.isoformat(),
                    f"bench-{k}",
                ],
                cwd=REPO,
                text=True,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env={**os.environ, "SG_KEY": sg.api_key},
            )
            for k in range(daemons)
        ]
        for w in workers:
            assert w.stdout is not None and w.stdout.readline().strip() == "ready"
        for w in workers:
            assert w.stdin is not None
            w.stdin.write("go\n")
            w.stdin.flush()
        results = [json.loads(w.communicate(timeout=600)[0]) for w in workers]
        official = official_client_rate(sg, min(1000 if not latency_ms else 100, emails))
    sent = sum(r["sent"] for r in results)
    seconds = max(r["finished"] for r in results) - min(r["started"] for r in results)
    ours = sent / seconds
    who = "one daemon" if daemons == 1 else f"{daemons} daemons"
    target = 2000 if daemons == 1 else 5000
    content = "a body of its own each (one request each)" if unique else "shared content"
    slow = f", answering in {latency_ms:g} ms" if latency_ms else ""
    return Figure(
        f"dispatch to a local SendGrid look-alike{slow}, {who}, {content}",
        ours,
        "emails/s",
        # the targets are for a provider that answers at once; a slow one is judged by the
        # requests in flight (`slow_provider`)
        "" if latency_ms else f">= {target}",
        {"official sendgrid client, one by one": official},
        f"{sent} emails (claim, render, send, record; {', '.join(str(r['sent']) for r in results)}"
        f" per daemon); also target >= 3x the official client ({3 * official:.0f}/s)",
    )


def slow_provider(
    store: Ledger, url: str, folder: Path, now: datetime, n: int, latency_ms: float = 100
) -> list[Figure]:
    """One daemon, then three, sending emails with a body of their own each (one request
    each, the usual case) to a look-alike that answers in `latency_ms`: a daemon's pace is
    its requests in flight over that time, so the figures are its mean requests in flight
    (16 configured by default) and three daemons' rate over one's."""
    one = dispatch_rate(store, url, folder, now, min(1500, n), unique=True, latency_ms=latency_ms)
    three = dispatch_rate(
        store, url, folder, now, min(4500, n), daemons=3, unique=True, latency_ms=latency_ms
    )
    in_flight = one.value * latency_ms / 1000
    return [
        one,
        three,
        Figure(
            f"requests in flight, one daemon, provider answering in {latency_ms:g} ms (mean)",
            in_flight,
            "requests",
            "",
            {},
            "transport.sendgrid.concurrency: 16 by default",
        ),
        Figure(
            f"three daemons over one, provider answering in {latency_ms:g} ms",
            three.value / one.value,
            "x",
            ">= 2.5",
            {},
            f"{three.value:.0f} vs {one.value:.0f} emails/s",
        ),
    ]


def official_client_rate(sg: Any, count: int) -> float:
    from sendgrid import SendGridAPIClient
    from sendgrid.helpers.mail import Mail

    client = SendGridAPIClient(api_key=sg.api_key, host=sg.url)
    started = time.perf_counter()
    for i in range(count):
        client.send(
            Mail(
                from_email="success@vendor.test",
                to_emails=f"c{i}@acme.test",
                subject="Receipt",
                plain_text_content="Thanks for your payment.",
            )
        )
    return count / (time.perf_counter() - started)


def as_json(figures: list[Figure]) -> list[dict[str, Any]]:
    return [{**f.__dict__, "met": f.met()} for f in figures]


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str)


def latency(folder: Path) -> list[Figure]:
    """Due time (scheduled mail) or submission (transactional) to the request reaching the
    look-alike, with `cadence run` as a real daemon (tick 1 s) beside this process: idle,
    then under load (a burst of 2,000 emails due at one instant, transactional mail submitted
    while it goes out). On a ledger of its own (1,000 customers, everything in it due
    tomorrow, rules that change nothing) so the figure is the daemon's reaction, not a first
    plan of the big ledger."""
    from datetime import UTC

    url = f"sqlite:///{folder / 'latency.db'}"
    generate(url, 1000, datetime.now(UTC) + timedelta(days=1))
    store = Ledger(url)
    ids = sample_ids(store, 1000)
    (folder / "none").mkdir(exist_ok=True)
    due: dict[str, datetime] = {}

    def submit(mid: str, cid: str, at: datetime, transactional: bool) -> None:
        store.ingest.add_messages(
            [_message(mid, cid, at, transactional=transactional)], now=datetime.now(UTC)
        )
        due[mid] = at

    with _Lookalike() as sg:
        config = _sendgrid_config(
            folder / "latency.yaml",
            url,
            sg,
            folder / "none",
            "http: {listen: '127.0.0.1:0'}\ndaemon: {tick: 1s}\n",
        )
        daemon = subprocess.Popen(
            [sys.executable, "-m", "cadence", "-c", str(config), "run"],
            env={**os.environ, "SG_KEY": sg.api_key},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(4)  # start-up, first plan
            now = datetime.now(UTC)
            for i in range(100):  # idle: one email due every 0.1 s
                submit(f"lat-s-{i}", ids[i], now + timedelta(seconds=3 + i * 0.1), False)
            for i in range(30):  # idle: transactional mail, submitted while the daemon runs
                submit(f"lat-t-{i}", ids[-1 - i], datetime.now(UTC), True)
                time.sleep(0.2)
            time.sleep(8)
            burst = datetime.now(UTC) + timedelta(seconds=3)
            store.ingest.add_messages(
                [_message(f"load-s-{i}", ids[i % len(ids)], burst) for i in range(2000)],
                now=datetime.now(UTC),
            )
            due.update({f"load-s-{i}": burst for i in range(2000)})
            time.sleep(max(0.0, (burst - datetime.now(UTC)).total_seconds()))
            for i in range(30):  # transactional mail submitted while the burst goes out
                submit(f"load-t-{i}", ids[500 + i], datetime.now(UTC), True)
                time.sleep(0.1)
            time.sleep(10)
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)
    from cadence.engine import email_id

    arrived = {
        mid: (sg.arrivals[email_id([mid])] - t.timestamp()) * 1000
        for mid, t in due.items()
        if email_id([mid]) in sg.arrivals
    }
    missing = _why_not_sent(store, [m for m in due if m not in arrived])
    store.close()
    out = []
    for kind, prefix, target in (
        ("scheduled, idle", "lat-s-", 2000),
        ("transactional, idle", "lat-t-", 1000),
        ("scheduled, a burst of 2,000 due at once", "load-s-", 2000),
        ("transactional, submitted during that burst", "load-t-", 1000),
    ):
        sent = sum(1 for m in due if m.startswith(prefix))
        lat = sorted(arrived[m] for m in arrived if m.startswith(prefix))
        why = _tally(r for m, r in missing.items() if m.startswith(prefix))
        if not lat:
            out.append(Figure(f"latency, {kind}", float("nan"), "ms", note="nothing arrived"))
            continue
        p50 = lat[len(lat) // 2]
        p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
        out.append(
            Figure(
                f"latency p99, {kind} (p50 {p50:.0f} ms)",
                p99,
                "ms",
                f"<= {target}",
                note=f"{len(lat)} of {sent} arrived{why}; daemon tick 1 s, woken for the next due",
            )
        )
    return out


def _why_not_sent(store: Ledger, ids: list[str]) -> dict[str, str]:
    """Each message that never reached the look-alike, with its status and reason in the
    ledger (the generated customers include hard-bounced ones, whose mail is rightly held)."""
    if not ids:
        return {}
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(messages.c.id, messages.c.status, messages.c.reason).where(
                messages.c.id.in_(ids)
            )
        )
        return {mid: f"{status}: {reason}" for mid, status, reason in rows}


def _tally(reasons: Iterable[str]) -> str:
    counts = Counter(reasons)
    if not counts:
        return ""
    return " (the rest " + "; ".join(f"{n} {r}" for r, n in counts.most_common()) + ")"
