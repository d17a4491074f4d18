"""The daemon's HTTP interface over real HTTP on loopback (a free port), on the real store
(SQLite and PostgreSQL, a fresh database each), with a real ECDSA P-256 key pair made here."""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cadence import metrics
from cadence.app import App
from cadence.config import load_settings
from cadence.delivery.unsubscribe import make_token
from cadence.engine import plan_customer
from cadence.feedback.ledger import unsubscribe_event_id
from cadence.feedback.server import HttpServer, start_http
from cadence.model import Customer, Event, Message, Status
from cadence.rules.model import Rules
from tests.support.ledger import save_plans

REPO = Path(__file__).resolve().parents[2]
SIG = "X-Twilio-Email-Event-Webhook-Signature"
TS = "X-Twilio-Email-Event-Webhook-Timestamp"


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Served:
    app: App
    client: httpx.Client
    server: HttpServer
    private: ec.EllipticCurvePrivateKey
    alive: threading.Event

    def signed(self, body: bytes, timestamp: str | None = None) -> dict[str, str]:
        ts = timestamp or str(int(now().timestamp()))
        sig = self.private.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {TS: ts, SIG: base64.b64encode(sig).decode(), "Content-Type": "application/json"}

    def post_events(self, *events: Any) -> httpx.Response:
        body = json.dumps(list(events)).encode()
        return self.client.post("/webhooks/sendgrid", content=body, headers=self.signed(body))

    def token(
        self,
        categories: list[str] | None = None,
        customer: str = "c-17",
        issued: datetime | None = None,
    ) -> str:
        return make_token(self.app.unsubscribe_secret(), customer, categories, issued or now())

    def customer(self, cid: str = "c-17") -> Customer:
        c = self.app.store.reads.customer(cid)
        assert c is not None
        return c


def _app(store, db_url: str, monkeypatch: pytest.MonkeyPatch, **settings: str) -> App:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("T_UNSUB_SECRET", "a secret only the test knows")
    env = {
        "CADENCE_DATABASE_URL": db_url,
        "CADENCE_RULES_DIR": str(REPO / "rules"),
        "CADENCE_TEMPLATES_DIR": str(REPO / "templates"),
        "CADENCE_UNSUBSCRIBE__SECRET_ENV": "T_UNSUB_SECRET",
        **{f"CADENCE_{key.upper()}": value for key, value in settings.items()},
    }
    app = App(load_settings(None, env), _store=store)
    store.ingest.upsert_customers(
        [
            (Customer("c-17", "ana@acme.test", "Ana", "America/New_York", "acme", {}), "d1"),
            (Customer("c-18", "bo@acme.test", "Bo", "Europe/Berlin", "acme", {}), "d2"),
        ],
        now=now(),
    )
    return app


@pytest.fixture
def served(store, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:  # type: ignore[no-untyped-def]
    app = _app(store, db_url, monkeypatch)
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    alive = threading.Event()
    alive.set()
    server = start_http(
        app,
        "127.0.0.1:0",
        public_key=base64.b64encode(public).decode(),
        scheduler_alive=alive.is_set,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10)
    try:
        yield Served(app, client, server, private, alive)
    finally:
        client.close()
        server.stop()


def sg(kind: str, sg_id: str, customer: str = "c-17", **extra: Any) -> dict[str, Any]:
    return {
        "event": kind,
        "sg_event_id": sg_id,
        "timestamp": int(now().timestamp()) - 60,
        "email": "ana@acme.test" if customer == "c-17" else "bo@acme.test",
        "cadence_email": "e-1",
        "cadence_customer": customer,
        "cadence_messages": "m1",
        "cadence_categories": "",
        **extra,
    }


# -- one-click unsubscribe ------------------------------------------------------------------


def test_get_shows_a_button_and_changes_nothing(served: Served) -> None:
    token = served.token(["announcement"])
    page = served.client.get(f"/u/{token}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<form method="post">' in page.text and "announcement" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert served.client.head(f"/u/{token}").status_code == 200
    assert served.app.store.ingest.event_digests([unsubscribe_event_id(token)]) == {}
    assert not served.customer().reach.unsubscribed_categories


def test_one_click_post_unsubscribes_at_once_and_a_second_click_is_a_no_op(
    served: Served,
) -> None:
    token = served.token(["announcement"])
    done = served.client.post(
        f"/u/{token}",
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200 and not done.is_redirect and "unsubscribed" in done.text
    assert served.customer().reach.unsubscribed_categories == {"announcement"}
    assert not served.customer().reach.unsubscribed_all
    event_id = unsubscribe_event_id(token)
    assert list(served.app.store.ingest.event_digests([event_id])) == [event_id]
    # the page's own form posts form data; it unsubscribes just the same (idempotently)
    again = served.client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200
    assert served.app.store.ingest.event_digests([f"{event_id}:{int(now().timestamp())}"]) == {}
    assert served.customer("c-18").reach == Customer("x", "x", "x").reach  # only c-17


def test_a_link_without_categories_unsubscribes_from_all(served: Served) -> None:
    assert served.client.post(f"/u/{served.token(None)}").status_code == 200
    assert served.customer().reach.unsubscribed_all


def test_clicking_again_after_resubscribing_unsubscribes_again(served: Served) -> None:
    token = served.token(None)
    assert served.client.post(f"/u/{token}").status_code == 200
    back = Event("r-1", "c-17", "resubscribed", now(), {})
    served.app.store.ingest.add_events([(back, "r")], now=now())
    served.app.store.ingest.apply_events(served.app.store.ingest.unprocessed_events(10))
    assert not served.customer().reach.unsubscribed_all
    assert served.client.post(f"/u/{token}").status_code == 200
    assert served.customer().reach.unsubscribed_all


def _tampered(token: str) -> list[str]:
    payload, _, signature = token.partition(".")
    raw = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw["c"] = "c-18"  # someone else's id, the old signature
    other = base64.urlsafe_b64encode(json.dumps(raw).encode()).rstrip(b"=").decode()
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    return [
        f"{other}.{signature}",
        f"{payload}.{flipped}",
        payload,
        f"{payload}.",
        "x.y",
        "%00",
        "%C3%A9.AAAA",
    ]


def test_forged_altered_or_malformed_tokens_get_403_and_change_nothing(served: Served) -> None:
    forged = make_token(b"not our secret", "c-17", None, now())
    for bad in [forged, *_tampered(served.token(None))]:
        assert served.client.post(f"/u/{bad}").status_code == 403, bad
        assert served.client.get(f"/u/{bad}").status_code == 403, bad
    for cid in ("c-17", "c-18"):
        assert not served.customer(cid).reach.unsubscribed_all
    assert served.app.store.ingest.unprocessed_events(100) == []


def test_an_expired_link_gets_a_page_saying_how_else_to_unsubscribe(served: Served) -> None:
    token = served.token(None, issued=now() - timedelta(days=366))
    for response in (served.client.get(f"/u/{token}"), served.client.post(f"/u/{token}")):
        assert response.status_code == 410
        assert response.headers["content-type"].startswith("text/html")
        assert response.headers["cache-control"] == "no-store"
        page = response.text
        assert "This link has expired" in page and "Nothing was changed" in page
        assert "365 days" in page and "reply to one of our emails" in page
        assert 'href="mailto:success@vendor.test"' in page  # the configured sender
        assert '<form method="post">' not in page
    assert served.app.store.ingest.event_digests([unsubscribe_event_id(token)]) == {}
    assert not served.customer().reach.unsubscribed_all
    # a link a day younger than the limit still works
    recent = served.token(None, issued=now() - timedelta(days=364))
    assert served.client.post(f"/u/{recent}").status_code == 200
    assert served.customer().reach.unsubscribed_all


def test_the_time_to_live_of_a_link_is_the_setting(store, db_url, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    app = _app(
        store,
        db_url,
        monkeypatch,
        unsubscribe__token_ttl="1h",
        sender__reply_to="help@vendor.test",
    )
    server = start_http(app, "127.0.0.1:0", public_key=None)
    try:
        base = f"http://127.0.0.1:{server.port}/u/"
        secret = app.unsubscribe_secret()
        old = make_token(secret, "c-17", None, now() - timedelta(hours=2))
        refused = httpx.post(base + old)
        assert refused.status_code == 410 and "help@vendor.test" in refused.text
        assert "work for an hour" in refused.text
        assert httpx.post(base + make_token(secret, "c-17", None, now())).status_code == 200
    finally:
        server.stop()


def test_a_valid_link_for_an_unknown_customer_stores_nothing(served: Served) -> None:
    assert served.client.post(f"/u/{served.token(None, customer='c-99')}").status_code == 200
    assert served.app.store.reads.customer("c-99") is None


# -- SendGrid's event webhook ---------------------------------------------------------------


def test_a_signed_batch_becomes_ledger_events_once(served: Served) -> None:
    batch = [
        sg("bounce", "b1", customer="c-18", type="bounce", reason="550 no such user"),
        sg("spamreport", "s1"),
        sg("group_unsubscribe", "u1", cadence_categories="tip,announcement"),
        sg("open", "o1"),
        sg("click", "k1", url="https://vendor.test/x"),
        sg("processed", "p1"),
        {"event": "delivered", "sg_event_id": "z", "timestamp": 1, "email": "x@y.test"},
    ]
    r = served.post_events(*batch)
    assert r.status_code == 200
    assert r.json() == {"stored": 5, "duplicates": 0, "ignored": 2, "settled": 0}
    assert served.customer("c-18").reach.hard_bounced
    reach = served.customer().reach
    assert reach.spam_reported and reach.unsubscribed_categories == {"tip", "announcement"}
    stored = served.app.store.ingest.event_digests(
        ["sg:b1", "sg:s1", "sg:u1", "sg:o1", "sg:k1", "sg:p1"]
    )
    assert sorted(stored) == ["sg:b1", "sg:k1", "sg:o1", "sg:s1", "sg:u1"]
    # SendGrid posts the same batch again (it retries without a 2xx): nothing new
    again = served.post_events(*batch)
    assert again.json() == {"stored": 0, "duplicates": 5, "ignored": 2, "settled": 0}


def test_a_bounce_for_an_address_the_customer_no_longer_has_suppresses_nothing(
    served: Served,
) -> None:
    r = served.post_events(sg("bounce", "b1", type="bounce", email="old@acme.test"))
    assert r.json()["ignored"] == 1 and not served.customer().reach.hard_bounced


def test_soft_bounces_are_counted_not_suppressing(served: Served) -> None:
    served.post_events(sg("bounce", "b1", type="blocked"), sg("deferred", "d1"))
    reach = served.customer().reach
    assert reach.soft_bounces == 2 and not reach.hard_bounced


def test_unsigned_altered_or_stale_signature_gets_403_and_stores_nothing(
    served: Served,
) -> None:
    body = json.dumps([sg("spamreport", "s1")]).encode()
    headers = served.signed(body)
    tampered = body.replace(b"spamreport", b"delivered ")
    later = {**headers, TS: str(int(headers[TS]) + 1)}
    other = ec.generate_private_key(ec.SECP256R1())
    forged_sig = other.sign(headers[TS].encode() + body, ec.ECDSA(hashes.SHA256()))
    forged = {**headers, SIG: base64.b64encode(forged_sig).decode()}
    for content, h in [
        (tampered, headers),
        (body, {}),
        (body, {TS: headers[TS]}),
        (body, later),
        (body, forged),
        (body, {**headers, SIG: "%%%"}),
    ]:
        r = served.client.post("/webhooks/sendgrid", content=content, headers=h)
        assert r.status_code == 403
    assert served.app.store.ingest.event_digests(["sg:s1"]) == {}
    assert not served.customer().reach.spam_reported


def test_a_malformed_batch_gets_400_and_stores_none_of_it(served: Served) -> None:
    good = [sg("bounce", f"b{i}", type="bounce") for i in range(3)]
    for events in ([*good, sg("open", "o1", timestamp="soon")], {"not": "an array"}):
        body = json.dumps(events).encode()
        r = served.client.post("/webhooks/sendgrid", content=body, headers=served.signed(body))
        assert r.status_code == 400 and "error" in r.json()
    body = b"[{"
    r = served.client.post("/webhooks/sendgrid", content=body, headers=served.signed(body))
    assert r.status_code == 400
    assert served.app.store.ingest.event_digests(["sg:b0", "sg:b1", "sg:b2"]) == {}
    assert not served.customer().reach.hard_bounced


def _fail_at(store, event_id: str) -> Callable[[], None]:  # type: ignore[no-untyped-def]
    """A trigger that refuses the insert of one event, in the database itself: the rows of
    the batch before it are written, then the write fails half-way. Returns what drops it."""
    from sqlalchemy import text

    with store.engine.begin() as conn:
        if store.is_postgres:
            conn.execute(
                text(
                    "CREATE FUNCTION fail_mid_batch() RETURNS trigger AS $$ BEGIN "
                    f"IF NEW.id = '{event_id}' THEN "
                    "RAISE EXCEPTION 'the database went away mid-batch'; END IF; "
                    "RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER fail_mid_batch BEFORE INSERT ON events "
                    "FOR EACH ROW EXECUTE FUNCTION fail_mid_batch()"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE TRIGGER fail_mid_batch BEFORE INSERT ON events "
                    f"WHEN NEW.id = '{event_id}' BEGIN "
                    "SELECT RAISE(ABORT, 'the database went away mid-batch'); END"
                )
            )

    def drop() -> None:
        with store.engine.begin() as conn:
            conn.execute(
                text("DROP TRIGGER fail_mid_batch" + (" ON events" if store.is_postgres else ""))
            )

    return drop


def test_a_batch_is_stored_whole_or_not_at_all(served: Served) -> None:
    store = served.app.store
    batch = [sg("bounce", f"b{i}", type="bounce") for i in range(4)]
    drop = _fail_at(store, "sg:b2")  # the third event's row fails, after two were written
    assert served.post_events(*batch).status_code == 500
    assert store.ingest.event_digests([f"sg:b{i}" for i in range(4)]) == {}  # rolled back, whole
    assert not served.customer().reach.hard_bounced
    drop()
    assert served.post_events(*batch).json()["stored"] == 4  # SendGrid's retry lands it whole
    # the server survived the failing handler, and keeps serving
    assert served.client.get("/healthz").status_code == 200 and served.server.running


def _unconfirmed(served: Served) -> str:
    """Message m1 planned, claimed and handed to a transport by a daemon that then died:
    its email is `unconfirmed`. Returns the email's id."""
    store = served.app.store
    t = now()
    store.ingest.add_messages(
        [(Message("m1", "c-17", "success", subject="s", body_text="b", send_after=t), "d")],
        now=now(),
    )
    rules = Rules(version="v1")
    contexts = store.planning.load_contexts(
        store.planning.customers_to_plan(t, 10), t, rules.lookback()
    )
    save_plans(store, [plan_customer(c, rules, t) for c in contexts], rules.version)
    (claimed,) = store.sending.claim_due(t + timedelta(seconds=1), "d1", timedelta(minutes=5), 10)
    email_id = claimed.email.id
    assert email_id in store.sending.mark_sending_many([email_id], "d1")
    store.sending.recover_leases(t + timedelta(minutes=6))  # the daemon died mid-send
    assert [e.id for e, _ in store.sending.unconfirmed_emails()] == [email_id]
    return email_id


def test_delivered_settles_an_unconfirmed_email_as_sent(served: Served) -> None:
    store = served.app.store
    email_id = _unconfirmed(served)
    r = served.post_events(sg("delivered", "dl1", cadence_email=email_id, cadence_messages="m1"))
    assert r.json() == {"stored": 1, "duplicates": 0, "ignored": 0, "settled": 1}
    assert store.sending.unconfirmed_emails() == []
    ((_message, decision),) = store.reads.messages_of("c-17")
    assert decision.status is Status.SENT and "SendGrid event dl1" in decision.reason
    repeat = served.post_events(sg("delivered", "dl1", cadence_email=email_id))
    assert repeat.json()["settled"] == 0


def test_dropped_settles_an_unconfirmed_email_as_failed_with_sendgrids_reason(
    served: Served,
) -> None:
    store = served.app.store
    email_id = _unconfirmed(served)
    # SendGrid took it (`processed`), then dropped it: in one batch, the drop is the last word
    r = served.post_events(
        sg("processed", "p1", cadence_email=email_id),
        sg("dropped", "dr1", cadence_email=email_id, reason="Bounced Address"),
    )
    assert r.status_code == 200 and r.json()["settled"] == 1
    assert store.sending.unconfirmed_emails() == []
    ((_message, decision),) = store.reads.messages_of("c-17")
    assert decision.status is Status.FAILED
    assert "dropped by SendGrid: Bounced Address" in decision.reason
    assert "SendGrid event dr1" in decision.reason
    # it stays failed: a later event about it settles nothing, and nothing plans it again
    again = served.post_events(sg("delivered", "dl1", cadence_email=email_id))
    assert again.json()["settled"] == 0
    assert store.reads.messages_of("c-17")[0][1].status is Status.FAILED


def test_without_a_key_every_post_is_refused_and_the_start_says_which_key_to_set(
    store,  # type: ignore[no-untyped-def]
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = _app(store, db_url, monkeypatch)
    with caplog.at_level(logging.INFO, logger="cadence.http"):
        server = start_http(app, "127.0.0.1:0", public_key=None)
    started = [r.getMessage() for r in caplog.records if "refuses unsigned" in r.getMessage()]
    assert len(started) == 1 and "http.sendgrid_webhook_public_key_env" in started[0]
    assert "http.sendgrid_webhook_allow_unsigned" in started[0]
    try:
        body = json.dumps([sg("spamreport", "s1")])
        url = f"http://127.0.0.1:{server.port}/webhooks/sendgrid"
        unsigned = httpx.post(url, content=body)
        assert unsigned.status_code == 403
        error = unsigned.json()["error"]
        assert "http.sendgrid_webhook_public_key_env" in error
        assert "http.sendgrid_webhook_allow_unsigned: true" in error
        # a signature does not help: there is no key to check it with
        headers = {TS: str(int(now().timestamp())), SIG: "AAAA"}
        assert httpx.post(url, content=body, headers=headers).status_code == 403
        assert app.store.ingest.event_digests(["sg:s1"]) == {}
        assert not app.store.reads.customer("c-17").reach.spam_reported  # type: ignore[union-attr]
    finally:
        server.stop()


def test_unsigned_posts_are_accepted_when_the_settings_allow_them(  # type: ignore[no-untyped-def]
    store, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _app(store, db_url, monkeypatch, http__sendgrid_webhook_allow_unsigned="true")
    assert app.settings.http.sendgrid_webhook_allow_unsigned
    server = start_http(app, "127.0.0.1:0", public_key=None)
    try:
        body = json.dumps([sg("spamreport", "s1")])
        r = httpx.post(f"http://127.0.0.1:{server.port}/webhooks/sendgrid", content=body)
        assert r.status_code == 200 and r.json()["stored"] == 1
    finally:
        server.stop()


def test_with_a_key_allow_unsigned_changes_nothing(store, db_url, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    app = _app(store, db_url, monkeypatch, http__sendgrid_webhook_allow_unsigned="true")
    public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    server = start_http(app, "127.0.0.1:0", public_key=base64.b64encode(public).decode())
    try:
        body = json.dumps([sg("spamreport", "s1")])
        r = httpx.post(f"http://127.0.0.1:{server.port}/webhooks/sendgrid", content=body)
        assert r.status_code == 403 and app.store.ingest.event_digests(["sg:s1"]) == {}
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("shift", "why"),
    [(timedelta(days=-2), "signed 2 days ago"), (timedelta(minutes=30), "in the future")],
)
def test_a_signature_from_two_days_ago_or_from_the_future_is_refused(
    served: Served, shift: timedelta, why: str
) -> None:
    body = json.dumps([sg("spamreport", "s1")]).encode()
    headers = served.signed(body, str(int((now() + shift).timestamp())))
    r = served.client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert r.status_code == 403 and why in r.json()["error"]
    assert served.app.store.ingest.event_digests(["sg:s1"]) == {}
    assert not served.customer().reach.spam_reported
    # the same batch signed now goes through: it was the time that was refused
    assert served.post_events(sg("spamreport", "s1")).json()["stored"] == 1


# -- health and metrics ---------------------------------------------------------------------


def test_healthz_says_whether_the_database_answers_and_the_scheduler_ticks(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok = served.client.get("/healthz")
    assert ok.status_code == 200 and ok.json() == {"database": "ok", "scheduler": "ok"}
    served.alive.clear()
    stalled = served.client.get("/healthz")
    assert stalled.status_code == 503 and stalled.json()["scheduler"] == "stalled"
    served.alive.set()

    def down(key: str) -> None:
        raise OSError("connection refused")

    monkeypatch.setattr(served.app.store.reads, "get_meta", down)
    broken = served.client.get("/healthz")
    assert broken.status_code == 503 and broken.json()["database"] == "down"


def _sample(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start + " ") or line.startswith(line_start + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_in_the_prometheus_text_format(served: Served) -> None:
    from cadence.model import Decision

    before = served.client.get("/metrics").text
    metrics.record_sent(3)
    metrics.record_failed()
    metrics.record_retried(2)
    metrics.record_unconfirmed()
    metrics.set_unconfirmed(4)
    metrics.observe_tick(0.2)
    metrics.set_queue_depth(7)
    metrics.record_decisions(
        [
            Decision("m1", Status.SUPPRESSED, "unsubscribed", rule="unsubscribed"),
            Decision("m2", Status.SCHEDULED, "in window"),
        ]
    )
    r = served.client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    for name, delta in [
        ("cadence_emails_sent_total", 3),
        ("cadence_emails_failed_total", 1),
        ("cadence_emails_retried_total", 2),
        ("cadence_emails_unconfirmed_total", 1),
        ("cadence_tick_seconds_count", 1),
    ]:
        assert _sample(text, name) - _sample(before, name) == delta, name
    assert _sample(text, "cadence_unconfirmed_emails") == 4
    assert _sample(text, "cadence_queue_depth") == 7
    assert 'cadence_decisions_total{rule="unsubscribed",status="suppressed"}' in text
    assert 'cadence_decisions_total{rule="",status="scheduled"}' in text
    assert "# TYPE cadence_tick_seconds histogram" in text


def test_the_same_batch_posted_concurrently_is_stored_once(served: Served) -> None:
    """SendGrid retries a post it got no answer to, possibly while the first is still being
    stored; and a person may double-click. Neither may fail or store twice."""
    from concurrent.futures import ThreadPoolExecutor

    batch = [sg("open", f"o{i}") for i in range(20)]
    body = json.dumps(batch).encode()
    headers = served.signed(body)
    token = served.token(["tip"])
    base = str(served.client.base_url)

    def post_batch(_: int) -> httpx.Response:
        return httpx.post(f"{base}/webhooks/sendgrid", content=body, headers=headers, timeout=30)

    def click(_: int) -> httpx.Response:
        return httpx.post(f"{base}/u/{token}", timeout=30)

    with ThreadPoolExecutor(8) as pool:
        posts = list(pool.map(post_batch, range(6)))
        clicks = list(pool.map(click, range(6)))
    assert [r.status_code for r in posts + clicks] == [200] * 12
    assert sum(r.json()["stored"] for r in posts) == 20
    assert len(served.app.store.ingest.event_digests([f"sg:o{i}" for i in range(20)])) == 20
    assert served.customer().reach.unsubscribed_categories == {"tip"}
