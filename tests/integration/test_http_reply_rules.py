"""What the starter rules do with a customer's reply, end to end: real multipart posts over
loopback to the daemon's HTTP server, on the real store, under the rules `cadence init`
writes (the repository's `rules/`), after a real pass sent the email being answered (file
transport: its Message-ID is the one on the wire). A reply ends the automated follow-ups of
the role it answers, and `cadence explain` names the reply and the rule; automated
marketing waits three days."""

from __future__ import annotations

import email
import email.policy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from cadence.app import App
from cadence.config import load_settings
from cadence.delivery.transports.sendgrid import SendgridTransport
from cadence.feedback.server import start_http
from cadence.flows.passes import run_pass
from cadence.flows.preview import explain
from cadence.model import Customer, Event, Message, Status
from tests.support.inbound_parse import (
    UNSUBSCRIBE_SECRET_ENV,
    multipart,
    reply_fields,
    served_env,
)
from tests.support.sendgrid_lookalike import SendgridLookalike

REPO = Path(__file__).resolve().parents[2]
KEY = "inbound-key-only-sendgrid-knows"
FOLLOW_UP = "pb:ticket-resolved-follow-up:ev-1"  # the starter playbook's check-in
RULE = "cancel rule a-reply-ends-the-follow-ups"


class Daemon:
    """The app, its HTTP server and a client, under the starter rules."""

    def __init__(self, app: App, port: int, outbox: Path) -> None:
        self.app, self.outbox = app, outbox
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

    def reply(self, sender: str, in_reply_to: str | None) -> dict[str, object]:
        body, content_type = multipart(reply_fields(sender, in_reply_to=in_reply_to))
        r = self.client.post(
            "/webhooks/sendgrid/inbound",
            params={"key": KEY},
            content=body,
            headers={"Content-Type": content_type},
        )
        assert r.status_code == 200, r.text
        result: dict[str, object] = r.json()
        return result

    def status(self, message_id: str) -> tuple[Status, str]:
        found = self.app.store.reads.message(message_id)
        assert found is not None, message_id
        return found[1].status, found[1].reason

    def send_and_wait(
        self, *, answered_role: str, t: datetime, sendgrid: SendgridLookalike | None = None
    ) -> str:
        """Ana's ticket was resolved a minute ago (the starter playbook's follow-up check-in
        waits three days), a sales follow-up of a sequence is queued, and a transactional
        email from `answered_role` went to her in this pass (by the file transport, or
        through the SendGrid lookalike). Returns its Message-ID as sent."""
        store = self.app.store
        before = t - timedelta(minutes=1)
        store.ingest.add_messages(
            [
                (Message("m1", "c-17", answered_role, category="receipt", transactional=True,
                         subject="Your ticket T-9 is resolved", body_text="It is fixed.",
                         send_after=before), "d1"),
                (Message("seq-2", "c-17", "sales", category="follow-up",
                         subject="Following up on the quote", body_text="Any thoughts?",
                         send_after=t + timedelta(days=2)), "d2"),
            ],
            now=before,
        )  # fmt: skip
        resolved = Event("ev-1", "c-17", "ticket_resolved", before, {"ticket": "T-9"})
        store.ingest.add_events([(resolved, "e1")], now=before)
        if sendgrid is not None:
            transport = SendgridTransport(sendgrid.api_key, sendgrid.url, timeout=5)
            run_pass(self.app, t, transport=transport)
            (got,) = [e for e in sendgrid.emails() if e["custom_args"]["cadence_messages"] == "m1"]
            return str(got["headers"]["Message-ID"])
        run_pass(self.app, t)
        for eml in self.outbox.glob("*.eml"):
            sent = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
            if sent["X-Cadence-Messages"] == "m1":
                return str(sent["Message-ID"])
        raise AssertionError("m1 was not sent")


@pytest.fixture
def daemon(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    from cadence.ledger.db import upgrade

    upgrade(db_url)
    monkeypatch.setenv(UNSUBSCRIBE_SECRET_ENV, "a secret only the test knows")
    env = served_env(db_url, REPO / "rules", REPO / "templates", tmp_path / "outbox", KEY)
    app = App(load_settings(None, env))
    ana = Customer("c-17", "ana@acme.test", "Ana", "UTC", "acme", {"plan": "pro"})
    # new this week: not yet the quiet customer the starter sweep checks in with
    app.store.ingest.upsert_customers([(ana, "c1")], now=datetime.now(UTC) - timedelta(days=2))
    server = start_http(app, "127.0.0.1:0", public_key=None)
    d = Daemon(app, server.port, tmp_path / "outbox")
    try:
        yield d
    finally:
        d.client.close()
        server.stop()
        app.close()


def explain_cli(app: App, message_id: str) -> dict[str, str]:
    """The last step of `cadence explain ID --format json`, as a person would run it."""
    cli = subprocess.run(
        [sys.executable, "-m", "cadence", "explain", message_id, "--format", "json"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("CADENCE_")},
            "CADENCE_DATABASE_URL": app.settings.database_url,
            "CADENCE_RULES_DIR": str(app.settings.rules_dir),
            "CADENCE_TEMPLATES_DIR": str(app.settings.templates_dir),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    last: dict[str, str] = json.loads(cli.stdout)["history"][-1]
    return last


def test_a_reply_ends_the_follow_ups_of_the_role_answered_and_explain_says_so(
    daemon: Daemon,
) -> None:
    t = datetime.now(UTC)
    ours = daemon.send_and_wait(answered_role="success", t=t)
    assert daemon.status(FOLLOW_UP)[0] in {Status.SCHEDULED, Status.DEFERRED}
    assert daemon.reply("Ana <ana@acme.test>", in_reply_to=ours)["stored"] == 1
    status, reason = daemon.status(FOLLOW_UP)
    (sent,) = [e for e, _ in daemon.app.store.reads.emails_of("c-17") if "m1" in e.members]
    assert status is Status.CANCELLED
    assert "(replied)" in reason and f"under {RULE}: " in reason
    assert reason.endswith(f"the customer replied to success's email {sent.id}")
    # the sales sequence was not what she answered: it goes on
    assert daemon.status("seq-2")[0] is not Status.CANCELLED
    said = explain(daemon.app.store, daemon.app.settings, daemon.app.rules(), FOLLOW_UP, t)
    assert said is not None and said.history[-1].decision.status is Status.CANCELLED
    last = explain_cli(daemon.app, FOLLOW_UP)
    assert last["status"] == "cancelled" and last["rule"] == "a-reply-ends-the-follow-ups"
    assert "(replied)" in last["reason"] and RULE in last["reason"]


def test_a_reply_to_sales_ends_the_sequence_and_not_the_check_in(daemon: Daemon) -> None:
    ours = daemon.send_and_wait(answered_role="sales", t=datetime.now(UTC))
    assert daemon.reply("ana@acme.test", in_reply_to=ours)["stored"] == 1
    status, reason = daemon.status("seq-2")
    assert status is Status.CANCELLED and RULE in reason
    assert daemon.status(FOLLOW_UP)[0] is not Status.CANCELLED
    assert RULE in explain_cli(daemon.app, "seq-2")["reason"]


def test_through_sendgrid_a_reply_names_the_email_by_the_message_id_cadence_gave_it(
    daemon: Daemon,
) -> None:
    """SendGrid is given cadence's Message-ID: a reply from an address we do not know (her
    phone) is still found by its thread, and the role it answers is known."""
    with SendgridLookalike() as sg:
        ours = daemon.send_and_wait(answered_role="sales", t=datetime.now(UTC), sendgrid=sg)
    (sent,) = [e for e, _ in daemon.app.store.reads.emails_of("c-17") if "m1" in e.members]
    assert ours == f"<{sent.id}@vendor.test>"
    assert daemon.reply("Ana <ana.m@mobile.test>", in_reply_to=ours)["stored"] == 1
    assert daemon.status("seq-2")[0] is Status.CANCELLED
    assert daemon.status(FOLLOW_UP)[0] is not Status.CANCELLED


def test_a_reply_that_names_none_of_our_emails_ends_every_roles_follow_ups(
    daemon: Daemon,
) -> None:
    daemon.send_and_wait(answered_role="success", t=datetime.now(UTC))
    assert daemon.reply("ana@acme.test", in_reply_to=None)["stored"] == 1
    status, reason = daemon.status(FOLLOW_UP)
    assert status is Status.CANCELLED and reason.endswith(": the customer wrote to us")
    assert daemon.status("seq-2")[0] is Status.CANCELLED


def test_an_unknown_sender_cancels_nothing(daemon: Daemon) -> None:
    daemon.send_and_wait(answered_role="success", t=datetime.now(UTC))
    # an address we do not know, naming none of our emails, is nobody: nothing is stored
    assert daemon.reply("mallory@elsewhere.test", in_reply_to=None)["unknown_sender"] is True
    assert daemon.status(FOLLOW_UP)[0] is not Status.CANCELLED
    assert daemon.status("seq-2")[0] is not Status.CANCELLED


def test_automated_marketing_waits_three_days_after_a_reply(daemon: Daemon) -> None:
    t = datetime.now(UTC)
    daemon.send_and_wait(answered_role="success", t=t)
    offer = Message(
        "mkt-1", "c-17", "marketing", category="offer", subject="20% off", body_text="Now.",
        send_after=t,
    )  # fmt: skip
    daemon.app.store.ingest.add_messages([(offer, "d3")], now=t)
    daemon.reply("ana@acme.test", in_reply_to=None)
    run_pass(daemon.app, datetime.now(UTC))
    found = daemon.app.store.reads.message("mkt-1")
    assert found is not None
    decision = found[1]
    assert decision.status is Status.DEFERRED and decision.rule == "quiet-after-a-reply"
    assert "last_reply_at" in decision.reason
