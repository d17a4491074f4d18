"""One truth: what `simulate` and `preview` say is what the passes that send then do.

Seeded workloads (`tests/support/workloads.py`: several accounts and time zones, account and
calendar limits, merges, suppressions, playbooks with `cancel_on`, events taking effect
mid-way) are loaded into a ledger; then

- `simulate` over the period (the passes on a scratch copy, nothing sent), and
- `preview` of each customer at the start, over the same period,

must equal, email for email (customer, members, time), what stepping `run --once` through
the period sends on the ledger itself, with the real file transport: stepped at the moments
the ledger says something is due, as a daemon wakes, and on a plain hourly clock, as a daemon
ticking all the while would (every time in these workloads falls on a whole hour). Each
message ends the same way too (sent, or suppressed, expired or cancelled by the same rule).

On SQLite and PostgreSQL, each run on a fresh database of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cadence import ingest
from cadence.app import App
from cadence.config import load_settings
from cadence.engine.playbooks import next_sweep
from cadence.flows.lifecycle import process_events
from cadence.flows.passes import run_pass
from cadence.flows.preview import preview
from cadence.flows.simulate import simulate
from cadence.model import Status
from tests.support.workloads import H, Workload, config, workload, write_inputs

#: an email as the tests compare them: whose, made of which messages, when
Sent = tuple[str, tuple[str, ...], datetime]
#: how each message ended: "sent", or its status and the rule that decided it
Ended = dict[str, tuple[str, str | None]]


def open_ledger(w: Workload, folder: Path, url: str) -> App:
    """The workload fed in as a team would (`customers import`, `messages record`,
    `messages submit`, `events ingest`, each as of the start)."""
    from cadence.ledger.db import upgrade

    upgrade(url)
    app = App(load_settings(config(folder, url)))
    files = write_inputs(w, folder / "in")
    for fn, name in (
        (ingest.import_customers, "customers"),
        (ingest.record_messages, "recorded"),
        (ingest.submit_messages, "submitted"),
        (ingest.ingest_events, "events"),
    ):
        report = fn(app.store, str(files[name]), now=w.start)  # type: ignore[operator]
        assert not report.errors, report.errors
    process_events(app.store, app.rules(), w.start)  # as `cadence events ingest` does
    return app


def simulated(app: App, w: Workload, parts: int | None = None) -> tuple[list[Sent], Ended]:
    sim = simulate(app.store, app.settings, app.rules(), w.start, w.end, parts=parts)
    emails = sorted((e.email.customer_id, e.email.members, e.email.send_at) for e in sim.emails)
    went = {m for _, members, _ in emails for m in members}
    ended: Ended = {}
    for message, d in sim.decisions:
        if message.id in went:
            ended[message.id] = ("sent", None)
        elif d.final:
            ended[message.id] = (str(d.status), d.rule)
    return emails, ended


def previewed(app: App, w: Workload) -> list[Sent]:
    out: list[Sent] = []
    for c in w.customers:
        p = preview(app.store, app.settings, app.rules(), c["id"], w.start, w.days)
        out += [(e.customer_id, e.members, e.send_at) for e in p.emails]
    return sorted(out)


def stepped(app: App, w: Workload, moments: Callable[[App, datetime], datetime | None]) -> None:
    """`run --once --now T` at each moment, from the start to the end."""
    t: datetime | None = w.start
    while t is not None and t <= w.end:
        run_pass(app, t)
        t = moments(app, t)


def due_moments(app: App, t: datetime) -> datetime | None:
    """When a daemon wakes next: the ledger's next due time, or a sweep period's start;
    at once again while something is due now (an email just went: its customer is looked at
    again)."""
    times = [
        x for x in (app.store.planning.next_wakeup(), next_sweep(app.rules(), t)) if x is not None
    ]
    return max(min(times), t) if times else None


def hourly(app: App, t: datetime) -> datetime:
    return t + H


def ledger_outcome(app: App, w: Workload, decided: Ended) -> tuple[list[Sent], Ended]:
    emails: list[Sent] = []
    ended: Ended = {}
    for c in w.customers:
        for email, status in app.store.reads.emails_of(c["id"]):
            if status == "sent" and w.start <= email.send_at <= w.end:
                emails.append((email.customer_id, email.members, email.send_at))
        for message, d in app.store.reads.messages_of(c["id"]):
            if message.id not in decided and not d.final:
                continue
            if d.status == Status.SENT:
                ended[message.id] = ("sent", None)
            elif d.final and d.status != Status.RECORDED:
                ended[message.id] = (str(d.status), d.rule)
    return sorted(emails), {k: v for k, v in ended.items() if k in decided or v[0] != "sent"}


def check(w: Workload, folder: Path, url: Callable[[str], str]) -> None:
    app = open_ledger(w, folder / "a", url("a"))
    try:
        emails, ended = simulated(app, w)
        assert emails, "a workload that sends nothing tests nothing"
        # split by account over processes, as a large ledger is: the same, email for email
        assert simulated(app, w, parts=3) == (emails, ended)
        assert previewed(app, w) == emails
        stepped(app, w, due_moments)
        assert ledger_outcome(app, w, ended) == (emails, ended)
    finally:
        app.close()
    # a daemon ticking every hour, not only when something is due, sends the same
    app = open_ledger(w, folder / "b", url("b"))
    try:
        stepped(app, w, hourly)
        assert ledger_outcome(app, w, ended) == (emails, ended)
    finally:
        app.close()


@contextmanager
def databases(kind: str, tmp: Path, pg_reason: str | None) -> Iterator[Callable[[str], str]]:
    """A fresh database for each name asked for, dropped at the end."""
    from tests.conftest import fresh_pg_database

    made: list[Iterator[str]] = []

    def url(name: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp / name}.db"
        gen = fresh_pg_database(pg_reason)
        made.append(gen)
        return next(gen)

    try:
        yield url
    finally:
        for gen in made:
            for _ in gen:  # runs the generator's clean-up (DROP DATABASE)
                pass


KINDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_simulate_preview_and_the_passes_agree(
    kind: str, seed: int, tmp_path: Path, pg_reason: str | None
) -> None:
    w = workload(seed, customers=10, days=10)
    with databases(kind, tmp_path, pg_reason) as url:
        check(w, tmp_path, url)


@pytest.mark.parametrize("kind", KINDS)
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(min_value=100, max_value=10_000),
    customers=st.integers(min_value=2, max_value=9),
    days=st.integers(min_value=3, max_value=9),
)
def test_they_agree_on_generated_workloads(
    kind: str,
    seed: int,
    customers: int,
    days: int,
    tmp_path_factory: pytest.TempPathFactory,
    pg_reason: str | None,
) -> None:
    tmp = tmp_path_factory.mktemp("w")
    with databases(kind, tmp, pg_reason) as url:
        check(workload(seed, customers=customers, days=days), tmp, url)
