"""Playbooks against a real store: check-ins created, cancelled, and never twice."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cadence.app import App
from cadence.config import load_settings
from cadence.flows.lifecycle import process_events, sweep_all
from cadence.flows.preview import preview
from cadence.model import Customer, Event, Status

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # a Monday
D = timedelta(days=1)


def make_app(url: str) -> App:
    from cadence.ledger.db import upgrade

    upgrade(url)
    env = {
        "CADENCE_DATABASE_URL": url,
        "CADENCE_RULES_DIR": str(REPO / "rules"),
        "CADENCE_TEMPLATES_DIR": str(REPO / "templates"),
    }
    return App(load_settings(None, env))


@pytest.fixture
def app(db_url: str):  # type: ignore[no-untyped-def]
    a = make_app(db_url)
    a.store.ingest.upsert_customers(
        [
            (
                Customer(
                    "c-17", "ana@acme.test", "Ana", "America/New_York", "acme", {"plan": "pro"}
                ),
                "d",
            )
        ],
        now=T0,
    )
    yield a
    a.close()


def test_onboarding_check_in_fourteen_days_later_then_cancelled_by_a_ticket(app: App) -> None:
    store, rules = app.store, app.rules()
    store.ingest.add_events([(Event("ev-1", "c-17", "onboarding_completed", T0), "a")], now=T0)
    created, _ = process_events(store, rules, T0)
    assert created == 1
    p = preview(store, app.settings, rules, "c-17", T0, 21)
    (email,) = [e for e in p.emails if "pb:after-onboarding:ev-1" in e.members]
    local = email.send_at.astimezone(ZoneInfo("America/New_York"))
    assert email.send_at >= T0 + 14 * D and local.weekday() < 5 and 9 <= local.hour < 17
    assert p.messages["pb:after-onboarding:ev-1"].origin == "event ev-1"
    # a ticket opened before the check-in goes cancels it, naming the event
    store.ingest.add_events([(Event("ev-2", "c-17", "ticket_opened", T0 + 3 * D), "b")], now=T0)
    assert process_events(store, rules, T0 + 3 * D) == (0, 1)
    p = preview(store, app.settings, rules, "c-17", T0 + 3 * D, 21)
    decision = {d.message_id: d for d in p.decisions}["pb:after-onboarding:ev-1"]
    assert decision.status is Status.CANCELLED and decision.event == "ev-2"
    assert "ev-2" in decision.reason and "ticket_opened" in decision.reason
    # the same event again creates nothing
    assert process_events(store, rules, T0 + 4 * D) == (0, 0)


def test_future_events_wait_for_their_time(app: App) -> None:
    store, rules = app.store, app.rules()
    store.ingest.add_events([(Event("ev-9", "c-17", "unsubscribed", T0 + 2 * D, {}), "a")], now=T0)
    process_events(store, rules, T0)
    assert not store.reads.customer("c-17").reach.unsubscribed_all
    process_events(store, rules, T0 + 2 * D)
    assert store.reads.customer("c-17").reach.unsubscribed_all


def test_preview_shows_the_sweep_check_in_ahead(app: App) -> None:
    p = preview(app.store, app.settings, app.rules(), "c-17", T0 + 40 * D, 7)
    swept = [m for m in p.messages.values() if m.playbook == "quiet-customer"]
    assert swept and swept[0].origin.startswith("sweep quiet-customer")
    assert any(swept[0].id in e.members for e in p.emails)
    # a preview sends and stores nothing: the check-in is the scratch copy's alone
    assert app.store.reads.messages_of("c-17") == []


def test_sweeping_a_thousand_customers_twice_creates_each_check_in_once(db_url: str) -> None:
    a = make_app(db_url)
    try:
        a.store.ingest.upsert_customers(
            [
                (Customer(f"c-{i:04}", f"c{i}@acme.test", "C", "UTC", None, {}), "d")
                for i in range(1000)
            ],
            now=T0,
        )
        when = T0 + 45 * D  # a month and more without a person writing
        first = sweep_all(a.store, a.rules(), when)
        second = sweep_all(a.store, a.rules(), when + timedelta(hours=3))
        later = sweep_all(a.store, a.rules(), when + 2 * D)  # the next day: the cooldown holds
        assert (first, second, later) == (1000, 0, 0)
    finally:
        a.close()


def test_two_daemons_sweeping_at_once_make_one_check_in_each(pg_url: str) -> None:
    apps = [make_app(pg_url) for _ in range(2)]
    try:
        apps[0].store.ingest.upsert_customers(
            [
                (Customer(f"c-{i:03}", f"c{i}@acme.test", "C", "UTC", None, {}), "d")
                for i in range(200)
            ],
            now=T0,
        )
        when = T0 + 45 * D
        counts = [0, 0]

        def sweep(k: int) -> None:
            counts[k] = sweep_all(apps[k].store, apps[k].rules(), when)

        threads = [threading.Thread(target=sweep, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(counts) == 200
        ids = [
            m.id
            for cid in apps[0].store.reads.customer_ids()
            for m, _ in apps[0].store.reads.messages_of(cid)
        ]
        assert len(ids) == len(set(ids)) == 200
    finally:
        for a in apps:
            a.close()
