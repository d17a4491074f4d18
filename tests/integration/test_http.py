"""The daemon's HTTP interface over real HTTP on loopback, on both databases."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cadence.app import App
from cadence.config import load_settings
from cadence.delivery.unsubscribe import make_token
from cadence.http.server import start_http
from cadence.model import Customer

REPO = Path(__file__).resolve().parents[2]
NOW = datetime.now(UTC)


@pytest.fixture
def keypair() -> tuple[ec.EllipticCurvePrivateKey, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, base64.b64encode(public).decode()


@pytest.fixture
def served(db_url: str, keypair, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from cadence.store.db import upgrade

    upgrade(db_url)
    monkeypatch.setenv("SG_WEBHOOK_KEY", keypair[1])
    env = {
        "CADENCE_DATABASE_URL": db_url,
        "CADENCE_RULES_DIR": str(REPO / "rules"),
        "CADENCE_TEMPLATES_DIR": str(REPO / "templates"),
        "CADENCE_HTTP__SENDGRID_WEBHOOK_PUBLIC_KEY_ENV": "SG_WEBHOOK_KEY",
    }
    app = App(load_settings(None, env))
    app.store.upsert_customers(
        [(Customer("c-17", "ana@acme.test", "Ana", "America/New_York", "acme", {}), "d")]
    )
    server = start_http(app, "127.0.0.1", 0)
    client = httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10)
    yield app, client
    client.close()
    server.stop()
    app.close()


def sign(private: ec.EllipticCurvePrivateKey, timestamp: str, body: bytes) -> str:
    return base64.b64encode(
        private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    ).decode()


def test_one_click_unsubscribe(served) -> None:  # type: ignore[no-untyped-def]
    app, client = served
    token = make_token(app.unsubscribe_secret(), "c-17", ["announcement"], NOW)
    page = client.get(f"/u/{token}")
    assert page.status_code == 200 and "<form" in page.text and 'method="post"' in page.text
    assert not app.store.customer("c-17").reach.unsubscribed_categories  # GET changes nothing
    done = client.post(
        f"/u/{token}",
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200 and not done.is_redirect
    assert app.store.customer("c-17").reach.unsubscribed_categories == {"announcement"}
    assert client.post(f"/u/{token}").status_code == 200  # a second click: still fine, no-op


def test_forged_or_altered_token_changes_nothing(served) -> None:  # type: ignore[no-untyped-def]
    app, client = served
    token = make_token(b"not the secret", "c-17", None, NOW)
    good = make_token(app.unsubscribe_secret(), "c-17", None, NOW)
    altered = good[:-3] + ("A" if good[-3] != "A" else "B") + good[-2:]
    for bad in (token, altered, "garbage"):
        assert client.post(f"/u/{bad}").status_code == 403
        assert client.get(f"/u/{bad}").status_code == 403
    assert not app.store.customer("c-17").reach.unsubscribed_all


def _event(kind: str, sg_id: str, **extra: object) -> dict[str, object]:
    return {
        "event": kind,
        "sg_event_id": sg_id,
        "timestamp": int(NOW.timestamp()) - 5,
        "email": "ana@acme.test",
        "cadence_customer": "c-17",
        "cadence_email": "e-1",
        **extra,
    }


def test_signed_webhook_batch_with_a_hard_bounce(served, keypair) -> None:  # type: ignore[no-untyped-def]
    app, client = served
    body = json.dumps(
        [
            _event("bounce", "sg-1", type="bounce", reason="550 no such user"),
            _event("open", "sg-2"),
            {
                "event": "delivered",
                "sg_event_id": "sg-x",
                "timestamp": 1,
                "email": "x@y.test",
            },  # not ours
        ]
    ).encode()
    ts = str(int(NOW.timestamp()))
    headers = {
        "X-Twilio-Email-Event-Webhook-Timestamp": ts,
        "X-Twilio-Email-Event-Webhook-Signature": sign(keypair[0], ts, body),
    }
    r = client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert r.status_code == 200 and r.json() == {"stored": 2, "duplicates": 0, "ignored": 1}
    assert app.store.customer("c-17").reach.hard_bounced
    again = client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert again.json()["stored"] == 0 and again.json()["duplicates"] == 2


def test_tampered_unsigned_or_malformed_batches_store_nothing(served, keypair) -> None:  # type: ignore[no-untyped-def]
    app, client = served
    body = json.dumps([_event("spamreport", "sg-3")]).encode()
    ts = str(int(NOW.timestamp()))
    signature = sign(keypair[0], ts, body)
    tampered = body.replace(b"spamreport", b"spamreporT")
    for content, headers in (
        (
            tampered,
            {
                "X-Twilio-Email-Event-Webhook-Timestamp": ts,
                "X-Twilio-Email-Event-Webhook-Signature": signature,
            },
        ),
        (body, {}),
        (
            body,
            {
                "X-Twilio-Email-Event-Webhook-Timestamp": str(int(ts) + 1),
                "X-Twilio-Email-Event-Webhook-Signature": signature,
            },
        ),
    ):
        assert (
            client.post("/webhooks/sendgrid", content=content, headers=headers).status_code == 403
        )
    bad = b'{"not": "an array"}'
    headers = {
        "X-Twilio-Email-Event-Webhook-Timestamp": ts,
        "X-Twilio-Email-Event-Webhook-Signature": sign(keypair[0], ts, bad),
    }
    assert client.post("/webhooks/sendgrid", content=bad, headers=headers).status_code == 400
    reach = app.store.customer("c-17").reach
    assert not reach.spam_reported and not reach.hard_bounced
    assert app.store.event_digests(["sg:sg-3"]) == {}


def test_health_and_metrics(served) -> None:  # type: ignore[no-untyped-def]
    _, client = served
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["database"] == "ok"
    text = client.get("/metrics").text
    assert "cadence_emails_sent_total" in text and "cadence_tick_seconds" in text
