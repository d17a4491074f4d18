"""Replies through SendGrid's Inbound Parse, end to end: real multipart posts over loopback
to the daemon's HTTP server, on the real store (SQLite and PostgreSQL), after a real pass
sent the email being answered (file transport: its Message-ID is the one on the wire)."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from cadence.app import App
from cadence.config import ConfigError, load_settings
from cadence.engine.scope import make_scope
from cadence.feedback.server import HttpServer, start_http
from cadence.flows.passes import run_pass
from cadence.flows.preview import explain
from cadence.ledger.tables import events
from cadence.model import Customer, Event, Message, Status
from tests.support.inbound_parse import (
    UNSUBSCRIBE_SECRET_ENV,
    multipart,
    reply_fields,
    served_env,
)

REPO = Path(__file__).resolve().parents[2]
KEY = "inbound-key-only-sendgrid-knows"
FOLLOW_UP = "pb:ticket-follow-up:ev-1"
PLAYBOOK = """\
playbooks:
  - name: ticket-follow-up
    on: ticket_resolved
    wait: 3d
    send: {role: success, category: check-in, template: ticket_follow_up, expires_after: 5d}
    cancel_on: [ticket_opened, replied]
"""


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Served:
    app: App
    client: httpx.Client
    server: HttpServer
    outbox: Path

    def post(self, fields: dict[str, str], key: str | None = KEY, **kw: Any) -> httpx.Response:
        body, content_type = multipart(fields, **kw)
        params = {"key": key} if key is not None else {}
        return self.client.post(
            "/webhooks/sendgrid/inbound",
            params=params,
            content=body,
            headers={"Content-Type": content_type},
        )

    def customer(self, cid: str = "c-17") -> Customer:
        c = self.app.store.reads.customer(cid)
        assert c is not None
        return c

    def replied(self) -> list[dict[str, Any]]:
        """Every `replied` event in the ledger (read directly: no ledger read lists them)."""
        with self.app.store.engine.connect() as conn:
            rows = conn.execute(select(events).where(events.c.type == "replied")).mappings()
            return [dict(r) for r in rows]


def make_app(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **extra: str) -> App:
    from cadence.ledger.db import upgrade

    upgrade(db_url)
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "playbooks.yaml").write_text(PLAYBOOK)
    monkeypatch.setenv(UNSUBSCRIBE_SECRET_ENV, "a secret only the test knows")
    env = {
        **served_env(db_url, rules, REPO / "templates", tmp_path / "outbox", KEY),
        **extra,
    }
    app = App(load_settings(None, env))
    app.store.ingest.upsert_customers(
        [
            (Customer("c-17", "ana@acme.test", "Ana", "UTC", "acme", {}), "d1"),
            (Customer("c-18", "bo@acme.test", "Bo", "Europe/Berlin", "acme", {}), "d2"),
        ],
        now=now(),
    )
    return app


@pytest.fixture
def served(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    app = make_app(db_url, tmp_path, monkeypatch)
    server = start_http(app, "127.0.0.1:0", public_key=None)
    client = httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10)
    try:
        yield Served(app, client, server, tmp_path / "outbox")
    finally:
        client.close()
        server.stop()
        app.close()


def sent_and_waiting(served: Served) -> str:
    """Ana's ticket was resolved a minute ago (the follow-up check-in waits three days) and
    a success email went to her in the same pass. Returns that email's Message-ID."""
    store, t = served.app.store, now()
    store.ingest.add_messages(
        [
            (
                Message(
                    "m1", "c-17", "success", category="check-in", subject="How is it going?",
                    body_text="Tell us how the new setup works for you.",
                    send_after=t - timedelta(minutes=1),
                ),
                "d",
            )
        ],
        now=t,
    )  # fmt: skip
    resolved = Event("ev-1", "c-17", "ticket_resolved", t - timedelta(minutes=1), {"ticket": "T-9"})
    store.ingest.add_events([(resolved, "e")], now=t)
    report = run_pass(served.app, t)
    assert report.created == 1 and len(report.dispatch.sent) == 1
    (eml,) = served.outbox.glob("*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    found = store.reads.message(FOLLOW_UP)
    assert found is not None and not found[1].final  # waiting for its three days
    return str(msg["Message-ID"])


def test_a_reply_cancels_the_follow_up_and_counts_as_contact(served: Served) -> None:
    ours = sent_and_waiting(served)
    (sent_email,) = [e for e, _ in served.app.store.reads.emails_of("c-17") if "m1" in e.members]
    fields = reply_fields(
        "Ana Example <ANA@Acme.test>", "Re: How is it going?", in_reply_to=ours, references=ours
    )
    r = served.post(fields)
    assert r.status_code == 200
    assert r.json() == {"stored": 1, "duplicates": 0, "unknown_sender": False}
    # the check-in no longer goes, and its decision names the reply
    found = served.app.store.reads.message(FOLLOW_UP)
    assert found is not None
    decision = found[1]
    assert decision.status is Status.CANCELLED
    (event,) = served.replied()
    assert f"event {event['id']} (replied) under playbook ticket-follow-up" in decision.reason
    assert event["customer_id"] == "c-17"
    assert event["data"] == {
        "source": "inbound email",
        "subject": "Re: How is it going?",
        "email_id": sent_email.id,
        "role": "success",
    }
    said = explain(served.app.store, served.app.settings, served.app.rules(), FOLLOW_UP, now())
    assert said is not None and said.history[-1].decision.status is Status.CANCELLED
    assert "(replied)" in said.history[-1].decision.reason
    # as the command line says it
    cli = subprocess.run(
        [sys.executable, "-m", "cadence", "explain", FOLLOW_UP, "--format", "json"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("CADENCE_")},
            "CADENCE_DATABASE_URL": served.app.settings.database_url,
            "CADENCE_RULES_DIR": str(served.app.settings.rules_dir),
            "CADENCE_TEMPLATES_DIR": str(served.app.settings.templates_dir),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    last = json.loads(cli.stdout)["history"][-1]
    assert last["status"] == "cancelled" and f"event {event['id']} (replied)" in last["reason"]
    # a reply is contact: days_since_contact sees it
    ana = served.customer()
    assert ana.engagement.replies == 1 and ana.engagement.last_reply_at is not None
    assert make_scope(ana, (), {}, now())["days_since_contact"]() < 0.01
    # SendGrid posts it again (another boundary): the same event, nothing new
    again = served.post(fields, boundary="a-retry-has-its-own-boundary")
    assert again.json() == {"stored": 0, "duplicates": 1, "unknown_sender": False}
    assert len(served.replied()) == 1 and served.customer().engagement.replies == 1


def test_a_reply_from_an_address_we_do_not_know_is_found_by_its_thread(served: Served) -> None:
    ours = sent_and_waiting(served)
    r = served.post(reply_fields("Ana on her phone <ana.m@mobile.test>", in_reply_to=ours))
    assert r.json()["stored"] == 1
    (event,) = served.replied()
    assert event["customer_id"] == "c-17" and event["data"]["role"] == "success"
    assert served.customer("c-18").engagement.replies == 0


def test_a_reply_without_a_message_id_is_one_event_however_often_posted(served: Served) -> None:
    fields = reply_fields("bo@acme.test", "A question", message_id=None)
    assert served.post(fields).json()["stored"] == 1
    assert served.post(fields, boundary="again").json()["duplicates"] == 1
    (event,) = served.replied()
    assert event["customer_id"] == "c-18" and "email_id" not in event["data"]


def test_an_unknown_sender_is_dropped_with_a_200_and_a_masked_log_line(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cadence.http")
    r = served.post(reply_fields("Stranger <mallory@elsewhere.test>"))
    assert r.status_code == 200 and r.json()["unknown_sender"] is True
    assert served.replied() == []
    assert "m***@elsewhere.test" in caplog.text and "mallory@" not in caplog.text


def test_an_out_of_office_is_not_a_reply(served: Served) -> None:
    ours = sent_and_waiting(served)
    auto = reply_fields(
        "ana@acme.test",
        "Automatic reply: away until Monday",
        in_reply_to=ours,
        extra_headers="Auto-Submitted: auto-replied\n",
    )
    r = served.post(auto)
    assert r.status_code == 200 and r.json()["stored"] == 0
    assert served.replied() == []
    found = served.app.store.reads.message(FOLLOW_UP)
    assert found is not None and found[1].status is not Status.CANCELLED


def test_a_post_without_the_key_or_with_a_wrong_one_is_refused(served: Served) -> None:
    fields = reply_fields("ana@acme.test")
    for key in (None, "", "inbound-key-only-sendgrid-know", KEY + "s", KEY.upper()):
        r = served.post(fields, key=key)
        assert r.status_code == 403, key
    # the key in a header instead of the URL is no key
    body, content_type = multipart(fields)
    r = served.client.post(
        "/webhooks/sendgrid/inbound",
        content=body,
        headers={"Content-Type": content_type, "X-Key": KEY, "Authorization": f"Bearer {KEY}"},
    )
    assert r.status_code == 403
    assert served.replied() == [] and served.customer().engagement.replies == 0


def test_a_post_that_is_not_inbound_parse_gets_400_and_stores_nothing(served: Served) -> None:
    r = served.client.post(
        "/webhooks/sendgrid/inbound",
        params={"key": KEY},
        json={"from": "ana@acme.test", "subject": "hi"},
    )
    assert r.status_code == 400 and "multipart/form-data" in r.json()["error"]
    assert served.replied() == []


def test_without_the_setting_every_post_is_refused(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(db_url, tmp_path, monkeypatch, CADENCE_HTTP__SENDGRID_INBOUND_KEY_ENV="null")
    server = start_http(app, "127.0.0.1:0", public_key=None)
    try:
        body, content_type = multipart(reply_fields("ana@acme.test"))
        r = httpx.post(
            f"http://127.0.0.1:{server.port}/webhooks/sendgrid/inbound",
            params={"key": KEY},
            content=body,
            headers={"Content-Type": content_type},
        )
        assert r.status_code == 403 and "http.sendgrid_inbound_key_env" in r.json()["error"]
        customer = app.store.reads.customer("c-17")
        assert customer is not None and customer.engagement.replies == 0
    finally:
        server.stop()
        app.close()


def test_a_key_variable_named_but_not_set_stops_the_start(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(db_url, tmp_path, monkeypatch, T_INBOUND_KEY="")
    try:
        with pytest.raises(ConfigError, match="T_INBOUND_KEY"):
            start_http(app, "127.0.0.1:0", public_key=None)
    finally:
        app.close()
