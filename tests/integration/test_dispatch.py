"""Dispatch against a local SendGrid look-alike: retries, failures, never twice."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cadence.app import App
from cadence.config import load_settings
from cadence.delivery.compose import OutgoingEmail
from cadence.delivery.transports import SendResult, TransportError
from cadence.delivery.transports.sendgrid import SendgridTransport
from cadence.flows.passes import run_pass
from cadence.ledger.ledger import Ledger
from cadence.ledger.tables import emails
from cadence.model import Customer, Message, Status
from tests.support.sendgrid_lookalike import Reply, SendgridLookalike

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tuesday, working hours in Berlin


@pytest.fixture
def app(db_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    repo = Path(__file__).resolve().parents[2]
    env = {
        "CADENCE_DATABASE_URL": db_url,
        "CADENCE_RULES_DIR": str(repo / "rules"),
        "CADENCE_TEMPLATES_DIR": str(repo / "templates"),
    }
    from cadence.ledger.db import upgrade

    upgrade(db_url)
    a = App(load_settings(None, env))
    a.store.ingest.upsert_customers(
        [(Customer("c-1", "a@acme.test", "A", "Europe/Berlin", None, {}), "d")], now=NOW
    )
    a.store.ingest.add_messages(
        [
            (
                Message(
                    "m1",
                    "c-1",
                    "billing",
                    category="receipt",
                    subject="Your receipt",
                    body_text="Thanks",
                    transactional=True,
                    send_after=NOW,
                ),
                "x",
            )
        ],
        now=NOW,
    )
    yield a
    a.close()


def _status(app: App) -> Status:
    return {m.id: d for m, d in app.store.reads.messages_of("c-1")}["m1"].status


def test_429_then_500_then_202_sends_once(app: App) -> None:
    with SendgridLookalike() as sg:
        sg.then(
            Reply(
                429,
                {"errors": [{"message": "too many"}]},
                {"X-RateLimit-Reset": str(int((NOW + timedelta(seconds=1)).timestamp()))},
            ),
            Reply(500, {"errors": [{"message": "oops"}]}),
        )
        transport = SendgridTransport(sg.api_key, sg.url, timeout=5)
        t = NOW
        for _ in range(10):
            report = run_pass(app, t, transport=transport)
            if report.dispatch.sent:
                break
            t += timedelta(minutes=10)  # past any backoff and lease
        assert [r.status for r in sg.received] == [429, 500, 202]
        assert sg.email_ids() == [report.dispatch.sent[0]]
        run_pass(app, t + timedelta(hours=1), transport=transport)
        assert len(sg.accepted) == 1
        assert _status(app) is Status.SENT


def test_400_fails_at_once_with_the_providers_text(app: App) -> None:
    with SendgridLookalike() as sg:
        sg.then(
            Reply(
                400, {"errors": [{"message": "The from address does not match", "field": "from"}]}
            )
        )
        report = run_pass(app, NOW, transport=SendgridTransport(sg.api_key, sg.url, timeout=5))
        assert report.dispatch.failed
        ((_m, d),) = app.store.reads.messages_of("c-1")
        assert d.status is Status.FAILED and "from address does not match" in d.reason
        run_pass(
            app,
            NOW + timedelta(hours=1),
            transport=SendgridTransport(sg.api_key, sg.url, timeout=5),
        )
        assert len(sg.received) == 1


def test_no_answer_leaves_it_unconfirmed_never_resent(app: App) -> None:
    with SendgridLookalike() as sg:
        url = sg.url
    # the server is gone: connection refused means nothing left -> retried later, not unconfirmed
    report = run_pass(app, NOW, transport=SendgridTransport("k", url, timeout=1))
    assert report.dispatch.retried == 1 and _status(app) is not Status.UNCONFIRMED


def test_a_pass_whose_time_is_up_stops_claiming_and_says_more_is_due(app: App) -> None:
    app.store.ingest.add_messages(
        [
            (
                Message(
                    f"r{i}",
                    "c-1",
                    "billing",
                    subject="r",
                    body_text="b",
                    transactional=True,
                    send_after=NOW,
                ),
                "x",
            )
            for i in range(4)
        ],
        now=NOW,
    )
    with SendgridLookalike() as sg:
        transport = SendgridTransport(sg.api_key, sg.url, timeout=5)
        from cadence.flows.planning import plan_due
        from cadence.flows.sending import Dispatcher

        plan_due(app.store, app.rules(), NOW, "UTC")
        dispatcher = Dispatcher(
            app.store,
            transport,
            app.renderer(),
            app.settings,
            b"s",
            "d1",
            keep_claiming=lambda: False,
        )
        first = dispatcher.run(NOW, batch=2)
        assert len(first.sent) == 2 and first.more_due  # one claim, then the time was up
        rest = dispatcher.run(NOW, batch=2)
        assert len(rest.sent) == 2 and rest.more_due
        last = dispatcher.run(NOW, batch=2)  # fewer than a batch: nothing more is due
        assert len(last.sent) == 1 and not last.more_due
        assert len(sg.emails()) == 5 and len(set(sg.email_ids())) == 5


def _crowd(app: App, n: int) -> None:
    """n more customers, each with a receipt and a product update due now (a category the
    starter rules send on its own, not in their twice-weekly digest): the same content for
    everyone but the update's unsubscribe link."""
    app.store.ingest.upsert_customers(
        [
            (Customer(f"p-{i}", f"p{i}@acme.test", "P", "Europe/Berlin", None, {}), "d")
            for i in range(n)
        ],
        now=NOW,
    )
    app.store.ingest.add_messages(
        [
            (
                Message(
                    f"{kind}-{i}",
                    f"p-{i}",
                    "billing" if kind == "rcpt" else "product",
                    category="receipt" if kind == "rcpt" else "update",
                    subject="Your receipt" if kind == "rcpt" else "What is new",
                    body_text="Thanks" if kind == "rcpt" else "A new dashboard",
                    transactional=kind == "rcpt",
                    send_after=NOW,
                ),
                "x",
            )
            for i in range(n)
            for kind in ("rcpt", "news")
        ],
        now=NOW,
    )


def test_same_content_goes_many_to_a_request_each_copy_with_its_own_link(app: App) -> None:
    _crowd(app, 30)
    with SendgridLookalike() as sg:
        report = run_pass(app, NOW, transport=SendgridTransport(sg.api_key, sg.url, timeout=5))
        emails = sg.emails()
        requests = len(sg.accepted)
    assert len(report.dispatch.sent) == len(emails) == 61  # 30 receipts, 30 news, c-1's receipt
    assert sorted(sg.email_ids()) == sorted(report.dispatch.sent)  # each exactly once
    assert requests < 61 / 4  # shared requests, not one per email
    news = [e for e in emails if e["subject"] == "What is new"]
    links = set()
    for e in news:
        link = e["headers"]["List-Unsubscribe"].strip("<>")
        assert link in e["content"][0]["value"]  # its own link, put back by SendGrid
        links.add(link)
    assert len(news) == len(links) == 30
    for i in range(30):
        assert app.store.reads.messages_of(f"p-{i}")[0][1].status is Status.SENT


def test_a_refused_request_fails_every_email_in_it(app: App) -> None:
    _crowd(app, 5)
    with SendgridLookalike() as sg:
        sg.then(*[Reply(400, {"errors": [{"message": "bad from", "field": "from"}]})] * 20)
        report = run_pass(app, NOW, transport=SendgridTransport(sg.api_key, sg.url, timeout=5))
        assert len(sg.received) < 11 and not sg.accepted
    assert len(report.dispatch.failed) == 11 and not report.dispatch.sent
    for i in range(5):
        for _m, d in app.store.reads.messages_of(f"p-{i}"):
            assert d.status is Status.FAILED and "bad from" in d.reason


class _Watching:
    """A transport that, at each hand-over, looks in the ledger: the emails must be marked
    `sending` already; it counts how many are `sending` (the most a crash can leave
    `unconfirmed`). One request in three fails without reaching the provider. With
    `batching`, emails of one content share a request, as SendGrid's do."""

    concurrency = 2

    def __init__(self, store: Ledger, batching: bool) -> None:
        self.store = store
        self.lock = threading.Lock()
        self.seen: list[str] = []
        self.requests = 0
        self.most = 0
        if batching:
            self.max_batch = 1000
            self.batch_key = lambda out: out.subject
            self.send_many = self._request

    def send(self, out: OutgoingEmail) -> SendResult:
        return self._request([out])

    def close(self) -> None:
        pass

    def _request(self, outs: Sequence[OutgoingEmail]) -> SendResult:
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(emails.c.id, emails.c.status).where(
                    emails.c.id.in_([o.email_id for o in outs])
                )
            )
            status = {email_id: st for email_id, st in rows}
            sending = conn.scalar(
                select(func.count()).select_from(emails).where(emails.c.status == "sending")
            )
        assert set(status.values()) == {"sending"}, f"handed over while {status}"
        with self.lock:
            self.seen += [o.email_id for o in outs]
            self.requests += 1
            self.most = max(self.most, int(sending or 0))
            fail = self.requests % 3 == 0
        if fail:
            raise TransportError("refused", permanent=True)
        return SendResult(f"p-{outs[0].email_id}")


@pytest.mark.parametrize("batching", [False, True], ids=["one-each", "batching"])
def test_only_what_is_marked_sending_goes_and_only_what_is_on_the_wire_is_sending(
    app: App, batching: bool
) -> None:
    from cadence.flows.planning import plan_due
    from cadence.flows.sending import Dispatcher

    _crowd(app, 70)
    plan_due(app.store, app.rules(), NOW, "UTC")
    transport = _Watching(app.store, batching)
    dispatcher = Dispatcher(app.store, transport, app.renderer(), app.settings, b"s", "d1")
    report = dispatcher.run(NOW, batch=40)
    assert len(transport.seen) == len(set(transport.seen)) == 141  # each once
    with app.store.engine.connect() as conn:
        rows = conn.execute(select(emails.c.status, func.count()).group_by(emails.c.status))
        left = {status: n for status, n in rows}
    assert left == {"sent": len(report.sent), "failed": len(report.failed)}  # all recorded
    assert len(report.sent) + len(report.failed) == 141 and report.failed
    if batching:
        # a request carries a claim's emails of one content (40 at most): two such requests
        # on the wire at once
        assert transport.requests < 141 / 10 and transport.most > 16
        bound = 2 * 40
    else:
        # one email a request: only the emails of the requests on the wire are `sending`
        assert transport.most > 0
        bound = transport.concurrency
    # the report's figure is what a crash could strand: never less than the ledger showed a
    # request, never more than the places hold. (Not equal to what the requests saw: a
    # request looks when its thread runs, and on a busy machine the write after the request
    # before it may have recorded that one as sent already.)
    assert transport.most <= report.most_sending <= bound


def test_a_provider_that_keeps_failing_is_tried_max_attempts_times_then_failed(app: App) -> None:
    """Each temporary failure counts, across the re-plans that place the email again: an
    email is tried MAX_ATTEMPTS times, not for ever."""
    from cadence.flows.sending import MAX_ATTEMPTS

    with SendgridLookalike() as sg:
        sg.then(*[Reply(500, {"errors": [{"message": "oops"}]})] * (MAX_ATTEMPTS * 4))
        transport = SendgridTransport(sg.api_key, sg.url, timeout=5)
        t = NOW
        for _ in range(MAX_ATTEMPTS * 4):
            run_pass(app, t, transport=transport)
            t += timedelta(hours=1)  # past any backoff and lease
        assert len(sg.received) == MAX_ATTEMPTS
        assert _status(app) is Status.FAILED


def test_a_daemon_keeps_its_configured_requests_in_flight_against_a_slow_provider(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider that takes a while to answer (as a real API does): the dispatcher keeps
    as many requests on the wire as `transport.sendgrid.concurrency` says (16 by default),
    not one or two, and each email goes once."""
    from cadence.delivery.transports import make_transport
    from cadence.flows.planning import plan_due
    from cadence.flows.sending import Dispatcher

    app.store.ingest.upsert_customers(
        [(Customer(f"r-{i}", f"r{i}@acme.test", "R", "UTC", None, {}), "d") for i in range(48)],
        now=NOW,
    )
    app.store.ingest.add_messages(
        [
            (
                Message(
                    f"rcpt-{i}",
                    f"r-{i}",
                    "billing",
                    category="receipt",
                    subject=f"Receipt #{i}",
                    body_text=f"Thanks for payment #{i}",  # a body of its own: one request each
                    transactional=True,
                    send_after=NOW,
                ),
                "x",
            )
            for i in range(48)
        ],
        now=NOW,
    )
    plan_due(app.store, app.rules(), NOW, "UTC")
    with SendgridLookalike() as sg:
        sg.delay = 0.25
        monkeypatch.setenv("SG_TEST_KEY", sg.api_key)
        config = tmp_path / "sendgrid.yaml"
        config.write_text(
            "transport:\n  kind: sendgrid\n"
            f"  sendgrid: {{api_host: '{sg.url}', api_key_env: SG_TEST_KEY}}\n"
        )
        transport = make_transport(load_settings(config))
        assert transport.concurrency == 16  # the default
        report = Dispatcher(app.store, transport, app.renderer(), app.settings, b"s", "d1").run(NOW)
        transport.close()
        # the fixture's own customer has an email due too
        assert sorted(sg.email_ids()) == sorted(report.sent) and len(report.sent) >= 48
    assert report.most_sending == 16
