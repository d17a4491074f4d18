"""SendGrid's event webhook, the pure half: signatures with a real ECDSA P-256 key pair made
here, and batches turned into ledger events (no server, no database)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cadence.feedback.webhook import (
    SETTLING,
    BadPublicKey,
    MalformedBatch,
    digest_of,
    load_public_key,
    parse_batch,
    verify_signature,
)
from cadence.model import EmailStatus

TS = "1763900000"


@pytest.fixture(scope="module")
def private() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def b64_der(key: ec.EllipticCurvePublicKey) -> str:
    """The key as SendGrid's settings page shows it."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def sign(private: ec.EllipticCurvePrivateKey, timestamp: str, body: bytes) -> str:
    return base64.b64encode(
        private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    ).decode()


def ours(kind: str, sg_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "event": kind,
        "sg_event_id": sg_id,
        "sg_message_id": "m.1",
        "timestamp": 1763900000,
        "email": "ana@acme.test",
        "cadence_email": "e-1",
        "cadence_customer": "c-17",
        "cadence_messages": "mkt-301,cs-12",
        "cadence_categories": "announcement,tip",
        **extra,
    }


def body_of(*events: Any) -> bytes:
    return json.dumps(list(events)).encode()


# -- signatures ----------------------------------------------------------------------------


def test_a_signature_over_timestamp_and_body_verifies(private) -> None:  # type: ignore[no-untyped-def]
    key = load_public_key(b64_der(private.public_key()))
    body = body_of(ours("delivered", "sg-1"))
    assert verify_signature(key, TS, body, sign(private, TS, body))


def test_the_pem_form_of_the_key_is_accepted_too(private) -> None:  # type: ignore[no-untyped-def]
    pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    body = b"[]"
    assert verify_signature(load_public_key(pem), TS, body, sign(private, TS, body))


def test_anything_altered_or_missing_fails(private) -> None:  # type: ignore[no-untyped-def]
    key = load_public_key(b64_der(private.public_key()))
    body = body_of(ours("spamreport", "sg-1"))
    good = sign(private, TS, body)
    other = ec.generate_private_key(ec.SECP256R1())
    assert not verify_signature(key, TS, body.replace(b"spamreport", b"delivered"), good)
    assert not verify_signature(key, str(int(TS) + 1), body, good)  # the timestamp is signed
    assert not verify_signature(key, TS, body + b" ", good)
    assert not verify_signature(key, None, body, good)
    assert not verify_signature(key, TS, body, None)
    assert not verify_signature(key, "", body, good)
    assert not verify_signature(key, TS, body, sign(other, TS, body))  # someone else's key
    assert not verify_signature(key, TS, body, "not base64!!")
    assert not verify_signature(key, TS, body, base64.b64encode(b"\x30\x02junk").decode())
    assert not verify_signature(key, TS, body, good[:-8] + "AAAAAAA=")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not base64 at all",
        base64.b64encode(b"random bytes, not DER").decode(),
        # a P-384 key: SendGrid signs with P-256, so this cannot be its key
        b64_der(ec.generate_private_key(ec.SECP384R1()).public_key()),
    ],
)
def test_a_key_that_is_not_p256_is_refused_at_load(text: str) -> None:
    with pytest.raises(BadPublicKey):
        load_public_key(text)


# -- mapping -------------------------------------------------------------------------------


def test_each_sendgrid_event_becomes_its_ledger_event() -> None:
    batch = parse_batch(
        body_of(
            ours("bounce", "b1", type="bounce", reason="550 5.1.1 no such user", status="5.1.1"),
            ours("bounce", "b2", type="blocked", reason="421 try later"),
            ours("deferred", "d1", response="451 greylisted", attempt="1"),
            ours("spamreport", "s1"),
            ours("unsubscribe", "u1"),
            ours("group_unsubscribe", "u2", cadence_categories="", asm_group_id=7),
            ours("group_resubscribe", "r1", cadence_categories="tip"),
            ours("delivered", "dl", response="250 OK"),
            ours("open", "o1", sg_machine_open=False, useragent="Mail"),
            ours("click", "k1", url="https://vendor.test/reports"),
        )
    )
    by_id = {m.event.id: m.event for m in batch.events if m.event is not None}
    assert by_id["sg:b1"].type == "bounced"
    assert by_id["sg:b1"].data["kind"] == "hard"
    assert by_id["sg:b1"].data["email"] == "ana@acme.test"
    assert by_id["sg:b1"].data["reason"] == "550 5.1.1 no such user"
    assert by_id["sg:b2"].data["kind"] == "soft" and by_id["sg:d1"].data["kind"] == "soft"
    assert by_id["sg:d1"].data["reason"] == "451 greylisted"
    assert by_id["sg:s1"].type == "spam_reported"
    assert by_id["sg:u1"].type == "unsubscribed"
    assert by_id["sg:u1"].data["categories"] == ["announcement", "tip"]
    assert "categories" not in by_id["sg:u2"].data  # no categories: unsubscribed from all
    assert by_id["sg:r1"].type == "resubscribed" and by_id["sg:r1"].data["categories"] == ["tip"]
    assert by_id["sg:dl"].type == "delivered"
    assert by_id["sg:o1"].type == "opened"
    assert by_id["sg:k1"].type == "clicked"
    assert by_id["sg:k1"].data["url"] == "https://vendor.test/reports"
    for event in by_id.values():
        assert event.customer_id == "c-17"
        assert event.at.timestamp() == 1763900000 and event.at.tzinfo is not None
        assert event.data["email_id"] == "e-1"
        assert event.data["messages"] == ["mkt-301", "cs-12"]
        assert event.data["sendgrid"]["sg_event_id"] == event.id[3:]  # the raw event is kept
    assert {m.settles for m in batch.events} == {"e-1"}  # each proves SendGrid took e-1
    assert {m.settles_as for m in batch.events} == {EmailStatus.SENT}
    assert {m.failure for m in batch.events} == {None}


def test_events_not_ours_or_of_no_interest_are_counted_not_kept() -> None:
    batch = parse_batch(
        body_of(
            {"event": "delivered", "sg_event_id": "x", "timestamp": 1, "email": "x@y.test"},
            {"event": "whatever", "note": "another system's event, in any shape"},
            ours("processed", "p1"),
            ours("asm_group_resubscribe_preview", "x1"),
        )
    )
    assert batch.ignored == 3
    assert batch.reasons == {"not ours": 2, "event 'asm_group_resubscribe_preview'": 1}
    (processed,) = batch.events
    assert processed.event is None and processed.settles == "e-1"  # it only settles
    assert processed.settles_as is EmailStatus.SENT


def test_dropped_settles_its_email_as_failed_with_sendgrids_reason() -> None:
    batch = parse_batch(
        body_of(
            ours("dropped", "dr1", reason="Bounced Address"),
            ours("dropped", "dr2", cadence_email="e-2", reason="Spam\nContent "),
            ours("dropped", "dr3", cadence_email="e-3"),
        )
    )
    assert [m.event for m in batch.events] == [None, None, None]  # nothing for the ledger
    assert [(m.settles, m.settles_as) for m in batch.events] == [
        ("e-1", EmailStatus.FAILED),
        ("e-2", EmailStatus.FAILED),
        ("e-3", EmailStatus.FAILED),
    ]
    assert [m.failure for m in batch.events] == [
        "dropped by SendGrid: Bounced Address",
        "dropped by SendGrid: Spam Content",  # one line: it becomes a status reason
        "dropped by SendGrid: no reason given",
    ]


def test_every_settling_event_settles_as_sendgrid_means_it() -> None:
    assert SETTLING["dropped"] is EmailStatus.FAILED
    assert {k for k, v in SETTLING.items() if v is EmailStatus.SENT} >= {
        "processed",
        "delivered",
        "deferred",
        "bounce",
    }
    assert set(SETTLING.values()) == {EmailStatus.SENT, EmailStatus.FAILED}


def test_the_same_event_twice_in_a_batch_is_kept_once() -> None:
    batch = parse_batch(body_of(ours("open", "o1"), ours("open", "o1"), ours("open", "o2")))
    assert [m.sg_event_id for m in batch.events] == ["o1", "o2"] and batch.repeated == 1


def test_the_digest_is_of_the_raw_event_whatever_its_key_order() -> None:
    a = ours("open", "o1")
    b = dict(reversed(list(a.items())))
    assert digest_of(a) == digest_of(b) != digest_of({**a, "timestamp": 2})
    (m,) = parse_batch(body_of(b)).events
    assert m.digest == digest_of(a)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"", "not JSON"),
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b'{"event": "open"}', "array"),
        (b"[1, 2]", "object"),
        (body_of(ours("open", "o1", timestamp="yesterday")), "timestamp"),
        (body_of(ours("open", "o1", timestamp=True)), "timestamp"),
        (body_of(ours("open", "o1", timestamp=10**20)), "timestamp"),
        (body_of(ours("open", "")), "sg_event_id"),
        (
            body_of({k: v for k, v in ours("open", "o1").items() if k != "sg_event_id"}),
            "sg_event_id",
        ),
        (body_of(ours("open", "o1", cadence_customer=17)), "cadence_customer"),
        (body_of(ours("open", "o1", cadence_customer=None)), "cadence_customer"),
        (body_of(ours("click", "k1", url=["a"])), "url"),
    ],
)
def test_a_malformed_body_is_refused_whole(body: bytes, why: str) -> None:
    with pytest.raises(MalformedBatch, match=why):
        parse_batch(body)


def test_one_bad_event_of_ours_refuses_the_batch_even_after_good_ones() -> None:
    good = [ours("bounce", f"b{i}", type="bounce") for i in range(5)]
    with pytest.raises(MalformedBatch, match="event 5"):
        parse_batch(body_of(*good, ours("open", "o1", timestamp=None)))


def test_an_empty_batch_is_valid() -> None:
    batch = parse_batch(b"[]")
    assert batch.events == () and batch.ignored == 0
