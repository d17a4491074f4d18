"""The sending figures of `python -m bench`: dispatch rates against the official client
(shared content, a body per email), a provider that answers slowly (requests in flight, three
daemons over one), and the latency from due to the request reaching the look-alike."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bench.figures import REPO, RULES, Figure, sample_ids, submitted
from bench.generate import generate
from bench.lookalike import LookalikeProcess, sendgrid_config
from cadence.flows.planning import plan_due
from cadence.ledger.ledger import Ledger
from cadence.ledger.tables import messages


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
            submitted(
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
    with LookalikeProcess(latency_ms) as sg:
        config = sendgrid_config(folder / f"dispatch-{tag}.yaml", url, sg, REPO / "rules")
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
            [submitted(mid, cid, at, transactional=transactional)], now=datetime.now(UTC)
        )
        due[mid] = at

    with LookalikeProcess() as sg:
        config = sendgrid_config(
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
                [submitted(f"load-s-{i}", ids[i % len(ids)], burst) for i in range(2000)],
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
