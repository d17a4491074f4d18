"""The SendGrid v3 Mail Send body: what SendGrid receives for one composed email."""

from __future__ import annotations

import json

from cadence.delivery.compose import OutgoingEmail
from cadence.delivery.sendgrid import sendgrid_payload


def outgoing(**kw: object) -> OutgoingEmail:
    fields: dict[str, object] = {
        "email_id": "e-0123456789abcdef",
        "customer_id": "c-17",
        "to_email": "ana@acme.test",
        "to_name": "Ana",
        "from_email": "success@vendor.test",
        "from_name": "Vendor",
        "reply_to": "help@vendor.test",
        "subject": "A few updates from Vendor",
        "text": "Hello Ana\n",
        "html": "<p>Hello Ana</p>\n",
        "headers": (
            ("X-Cadence-Customer", "c-17"),
            ("X-Cadence-Messages", "cs-12,prd-7"),
            ("X-Cadence-Email", "e-0123456789abcdef"),
            ("List-Unsubscribe", "<http://localhost:8787/u/tok>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ),
        "message_ids": ("cs-12", "prd-7"),
        "transactional": False,
        "categories": ("onboarding", "product-tour"),
    }
    fields.update(kw)
    return OutgoingEmail(**fields)  # type: ignore[arg-type]


def test_full_payload() -> None:
    assert sendgrid_payload(outgoing()) == {
        "personalizations": [{"to": [{"email": "ana@acme.test", "name": "Ana"}]}],
        "from": {"email": "success@vendor.test", "name": "Vendor"},
        "reply_to": {"email": "help@vendor.test"},
        "subject": "A few updates from Vendor",
        "content": [
            {"type": "text/plain", "value": "Hello Ana\n"},
            {"type": "text/html", "value": "<p>Hello Ana</p>\n"},
        ],
        "headers": {
            "X-Cadence-Customer": "c-17",
            "X-Cadence-Messages": "cs-12,prd-7",
            "X-Cadence-Email": "e-0123456789abcdef",
            "List-Unsubscribe": "<http://localhost:8787/u/tok>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        "custom_args": {
            "cadence_email": "e-0123456789abcdef",
            "cadence_customer": "c-17",
            "cadence_messages": "cs-12,prd-7",
            "cadence_categories": "onboarding,product-tour",
        },
        "categories": ["onboarding", "product-tour"],
        "mail_settings": {"sandbox_mode": {"enable": False}},
    }


def test_minimal_transactional_payload_in_sandbox() -> None:
    payload = sendgrid_payload(
        outgoing(
            to_name=None,
            from_name=None,
            reply_to=None,
            html=None,
            headers=(("X-Cadence-Customer", "c-17"), ("X-Cadence-Messages", "bill-88")),
            message_ids=("bill-88",),
            transactional=True,
            categories=(),
        ),
        sandbox=True,
    )
    assert payload["personalizations"] == [{"to": [{"email": "ana@acme.test"}]}]
    assert payload["from"] == {"email": "success@vendor.test"}
    assert "reply_to" not in payload and "categories" not in payload
    assert payload["content"] == [{"type": "text/plain", "value": "Hello Ana\n"}]
    assert "List-Unsubscribe" not in payload["headers"]
    assert payload["mail_settings"] == {"sandbox_mode": {"enable": True}}


def test_custom_args_are_strings_and_payload_is_json() -> None:
    payload = sendgrid_payload(outgoing())
    assert all(isinstance(v, str) for v in payload["custom_args"].values())
    assert json.loads(json.dumps(payload)) == payload


def test_at_most_ten_categories() -> None:
    many = tuple(f"c{i}" for i in range(15))
    assert len(sendgrid_payload(outgoing(categories=many))["categories"]) == 10
