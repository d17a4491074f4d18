"""The SendGrid v3 Mail Send body: what SendGrid receives for one composed email."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default

from cadence.delivery.compose import OutgoingEmail
from cadence.delivery.mime import to_bytes
from cadence.delivery.transports.sendgrid import sendgrid_batch_payload, sendgrid_payload
from cadence.feedback.inbound import read_reply


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
            "Message-ID": "<e-0123456789abcdef@vendor.test>",
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


def _for(n: int, **kw: object) -> OutgoingEmail:
    """Customer n's copy of one announcement: its own address, ids and unsubscribe link."""
    url = f"http://localhost:8787/u/tok-{n}"
    fields: dict[str, object] = {
        "email_id": f"e-{n:016x}",
        "customer_id": f"c-{n}",
        "to_email": f"p{n}@acme.test",
        "subject": f"News, {n}",
        "text": f"Hello\n\nUnsubscribe: {url}\n",
        "html": f'<p>Hello</p><a href="{url}">Unsubscribe</a>\n',
        "headers": (
            ("X-Cadence-Customer", f"c-{n}"),
            ("List-Unsubscribe", f"<{url}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ),
        "message_ids": (f"m-{n}",),
    }
    fields.update(kw)
    return outgoing(**fields)


def test_copies_that_differ_only_in_their_unsubscribe_link_share_a_request() -> None:
    from cadence.delivery.transports.sendgrid import batch_key

    assert batch_key(_for(1)) == batch_key(_for(2)) is not None
    assert batch_key(_for(1)) != batch_key(_for(2, text="Hello Bo\n"))  # a name: its own
    assert batch_key(_for(1)) != batch_key(_for(2, reply_to="other@vendor.test"))
    assert batch_key(_for(1)) != batch_key(_for(2, categories=("tip",)))
    # content that already holds the tag would be changed by SendGrid's substitution
    assert batch_key(_for(1, text="-cadence-unsubscribe-url- is our tag\n")) is None


def test_sendgrid_makes_each_copy_exactly_as_it_would_go_alone() -> None:
    from cadence.delivery.transports.sendgrid import sendgrid_batch_payload
    from tests.support.sendgrid_lookalike import check_payload, emails_of

    outs = [_for(n) for n in range(1, 4)]
    payload = json.loads(json.dumps(sendgrid_batch_payload(outs)))
    assert check_payload(payload) is None
    assert "tok-" not in json.dumps(payload["content"])  # the links live in substitutions
    made = emails_of(payload, 0.0)
    for out, email in zip(outs, made, strict=True):
        alone = sendgrid_payload(out)
        assert email["to"] == out.to_email and email["subject"] == out.subject
        assert email["content"] == alone["content"]
        assert email["headers"] == alone["headers"]
        assert email["custom_args"] == alone["custom_args"]


def test_a_request_naming_an_address_twice_is_what_sendgrid_refuses() -> None:
    from cadence.delivery.transports.sendgrid import sendgrid_batch_payload
    from tests.support.sendgrid_lookalike import check_payload

    twice = sendgrid_batch_payload([_for(1), _for(2, to_email="P1@acme.test")])
    assert check_payload(twice) is not None  # which is why the dispatcher never builds it


class _Batching:
    """A transport that declares it batches (`BatchingTransport`), three to a request."""

    concurrency = 1
    max_batch = 3

    @staticmethod
    def batch_key(out: OutgoingEmail) -> str | None:
        return out.subject

    def send(self, out: OutgoingEmail) -> None: ...

    def send_many(self, outs: object) -> None: ...

    def close(self) -> None: ...


def test_requests_hold_one_key_each_recipient_once_and_at_most_max_batch() -> None:
    from cadence.flows.sending import Requests

    def batches(going: list[object], transport: object) -> list[list[object]]:
        requests = Requests(transport)  # type: ignore[arg-type]
        for pair in going:
            assert requests.add(pair)  # type: ignore[arg-type]
        return requests.groups  # type: ignore[return-value]

    outs = [
        _for(1, subject="a"),
        _for(2, subject="a"),
        _for(3, subject="b"),
        _for(4, subject="a", to_email="P1@acme.test"),  # p1 again: another request
        _for(5, subject="a"),
        _for(6, subject="a"),
    ]
    groups = batches([(None, o) for o in outs], _Batching())
    assert [[o.email_id[-1] for _, o in g] for g in groups] == [
        ["1", "2", "5"],
        ["3"],
        ["4", "6"],
    ]

    class OneByOne:
        concurrency = 1

        def send(self, out: OutgoingEmail) -> None: ...

        def close(self) -> None: ...

    alone = batches([(None, o) for o in outs], OneByOne())
    assert [len(g) for g in alone] == [1] * 6


def test_each_email_carries_the_message_id_the_file_and_smtp_transports_give_it() -> None:
    """A reply's In-Reply-To names the email by this id: the inbound webhook reads the email
    id back from its local part (`feedback.inbound.read_reply`)."""
    one = outgoing()
    on_the_wire = message_from_bytes(to_bytes(one, datetime.now(UTC)), policy=default)
    assert sendgrid_payload(one)["headers"]["Message-ID"] == on_the_wire["Message-ID"]
    batch = sendgrid_batch_payload([_for(1), _for(2)])
    ids = [p["headers"]["Message-ID"] for p in batch["personalizations"]]
    assert ids == [f"<e-{n:016x}@vendor.test>" for n in (1, 2)] and "headers" not in batch
    answer = read_reply({"from": "p2@acme.test", "headers": f"In-Reply-To: {ids[1]}\n"})
    assert answer.answers == (f"e-{2:016x}",)
