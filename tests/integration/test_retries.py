"""Recovering without a person, against a local SendGrid look-alike over loopback: 429s back
off within the cap and never past an expiry, and a fixed template releases the mail it held.

The passes run at a virtual time (November 2026) while SendGrid's reset times are Unix times
on this host's clock: a wait must be measured as a delay, or a reset a second away would look
days away from the virtual clock."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from cadence.app import App
from cadence.config import load_settings
from cadence.delivery.transports.sendgrid import SendgridTransport
from cadence.flows.passes import run_pass
from cadence.flows.sending import BACKOFF_BASE, BACKOFF_CAP
from cadence.ledger.tables import emails
from cadence.model import Customer, EmailStatus, Message, Status
from tests.support.sendgrid_lookalike import Reply, SendgridLookalike

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[App]:
    from cadence.ledger.db import upgrade

    shutil.copytree(REPO / "templates", tmp_path / "templates")
    env = {
        "CADENCE_DATABASE_URL": db_url,
        "CADENCE_RULES_DIR": str(REPO / "rules"),
        "CADENCE_TEMPLATES_DIR": str(tmp_path / "templates"),
    }
    upgrade(db_url)
    a = App(load_settings(None, env))
    a.store.ingest.upsert_customers(
        [(Customer("c-1", "a@acme.test", "Ana", "Europe/Berlin", None, {}), "d")], now=NOW
    )
    yield a
    a.close()


def _receipt(app: App, message_id: str = "m1", **fields: object) -> None:
    values: dict[str, object] = {
        "category": "receipt",
        "subject": "Your receipt",
        "body_text": "Thanks",
        "transactional": True,
        "send_after": NOW,
        **fields,
    }
    message = Message(message_id, "c-1", "billing", **values)  # type: ignore[arg-type]
    app.store.ingest.add_messages([(message, "x")], now=NOW)


def _decision(app: App, message_id: str = "m1"):  # type: ignore[no-untyped-def]
    return {m.id: d for m, d in app.store.reads.messages_of("c-1")}[message_id]


def _parked(app: App) -> datetime | None:
    """When the email waiting for its retry may be tried again (None: none waits)."""
    with app.store.engine.connect() as conn:
        row = conn.execute(
            select(emails.c.lease_until).where(
                emails.c.status == EmailStatus.CLAIMED, emails.c.lease_owner.is_(None)
            )
        ).first()
    if row is None:
        return None
    at: datetime = row[0]
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _too_many(reset: int) -> Reply:
    return Reply(
        429, {"errors": [{"message": "too many requests"}]}, {"X-RateLimit-Reset": str(reset)}
    )


RESETS = {
    "in the past": -3600,
    "now": 0,
    "a second ahead": 1,
    "an hour ahead": 3600,
    "absurd": 10**11,
}


@pytest.mark.parametrize("offset", RESETS.values(), ids=RESETS.keys())
def test_429s_wait_at_least_the_floor_at_most_the_cap_and_the_email_goes_once(
    app: App, offset: int
) -> None:
    _receipt(app)
    with SendgridLookalike() as sg:
        sg.then(*[_too_many(int(time.time()) + offset)] * 3)
        transport = SendgridTransport(sg.api_key, sg.url, timeout=5)
        t, waits = NOW, []
        for _ in range(20):
            report = run_pass(app, t, transport=transport)
            assert not report.dispatch.failed, _decision(app).reason
            if report.dispatch.sent:
                break
            parked = _parked(app)
            if parked is not None:  # a retry waits: step to just after it
                waits.append(parked - t)
                t = parked + timedelta(seconds=1)
            else:  # released to the plan: the next pass places it again
                t += timedelta(seconds=1)
        assert [r.status for r in sg.received] == [429, 429, 429, 202]
        assert len(sg.accepted) == 1 and _decision(app).status is Status.SENT
    assert len(waits) == 3
    for attempt, wait in enumerate(waits):
        # the floor doubles with each attempt (+-50% jitter); nothing waits past the cap,
        # however far the reset is (an hour, the year 5138)
        assert BACKOFF_BASE * 2**attempt / 2 <= wait <= BACKOFF_CAP, (attempt, wait)
        if offset >= 3600:
            assert wait == BACKOFF_CAP
        if offset == 1:
            assert wait >= timedelta(seconds=0.5)


def test_a_retry_whose_wait_is_long_over_goes_in_the_next_pass(app: App) -> None:
    """A pass an hour after the wait (a `run --once` later, a daemon that was down) gives the
    customer its look again before it claims, so the email goes in that pass, not the next."""
    _receipt(app)
    with SendgridLookalike() as sg:
        sg.then(_too_many(int(time.time())))
        transport = SendgridTransport(sg.api_key, sg.url, timeout=5)
        first = run_pass(app, NOW, transport=transport)
        assert first.dispatch.retried == 1 and "1 email to retry" in first.summary()
        parked = _parked(app)
        assert parked is not None
        later = run_pass(app, parked + timedelta(hours=1), transport=transport)
        assert later.dispatch.released == 1 and later.dispatch.sent
        assert [r.status for r in sg.received] == [429, 202]
    assert _decision(app).status is Status.SENT


def test_a_retry_that_would_come_after_the_expiry_expires_the_message_saying_why(
    app: App,
) -> None:
    _receipt(app, expires_at=NOW + timedelta(minutes=10))
    with SendgridLookalike() as sg:
        sg.then(_too_many(int(time.time()) + 3600))  # come back in an hour (capped: 30 min)
        report = run_pass(app, NOW, transport=SendgridTransport(sg.api_key, sg.url, timeout=5))
        assert report.dispatch.expired and not report.dispatch.retried
        later = run_pass(
            app, NOW + timedelta(hours=1), transport=SendgridTransport(sg.api_key, sg.url)
        )
        assert not later.dispatch.sent and len(sg.received) == 1  # never tried again
    decision = _decision(app)
    assert decision.status is Status.EXPIRED
    assert "HTTP 429" in decision.reason and "past its expiry" in decision.reason
    assert _parked(app) is None  # nothing waits, claimed, past its expiry


def test_a_receipt_held_by_a_broken_template_goes_once_the_template_is_fixed(app: App) -> None:
    folder = Path(app.settings.templates_dir)
    (folder / "receipt_x.subject.j2").write_text("Receipt {{ message.data.invoice }}\n")
    (folder / "receipt_x.text.j2").write_text("Hello {{ customer.nmae }}\n")  # a typo
    _receipt(app, template="receipt_x", subject=None, body_text=None, data={"invoice": "I-1"})
    with SendgridLookalike() as sg:
        transport = SendgridTransport(sg.api_key, sg.url, timeout=5)
        run_pass(app, NOW, transport=transport)
        held = _decision(app)
        assert held.status is Status.HELD and "nmae" in held.reason
        run_pass(app, NOW + timedelta(minutes=1), transport=transport)
        assert _decision(app).status is Status.HELD and not sg.received  # still broken
        (folder / "receipt_x.text.j2").write_text("Hello {{ customer.name }}\n")
        report = run_pass(app, NOW + timedelta(minutes=2), transport=transport)
        assert report.dispatch.sent and _decision(app).status is Status.SENT
        ((email,),) = [sg.emails()]
        assert email["subject"] == "Receipt I-1" and "Hello Ana" in email["content"][0]["value"]
