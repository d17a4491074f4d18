"""The request body built with SendGrid's helper classes is the one the plain-dict builder
made (`bench/payload_cost.py` keeps it): the same JSON for the emails cadence sends, alone
and many to a request. And what the helpers refuse to build fails the email at once, before
anything goes out."""

from __future__ import annotations

import json

import pytest

from bench.payload_cost import by_hand, by_hand_batch, sample
from cadence.delivery.transports.base import TransportError
from cadence.delivery.transports.sendgrid import (
    SendgridTransport,
    sendgrid_batch_payload,
    sendgrid_payload,
)

EMAILS = {
    "a digest of two messages, text and HTML, every header": sample(1),
    "text only, no names, no reply-to, no categories": sample(
        2, html=None, to_name=None, from_name=None, reply_to=None, categories=()
    ),
    "a receipt: one message, no unsubscribe link": sample(
        3,
        message_ids=("bill-88",),
        transactional=True,
        headers=(("X-Cadence-Customer", "c-3"), ("X-Cadence-Messages", "bill-88")),
    ),
    "more categories than SendGrid takes": sample(4, categories=tuple(f"k{i}" for i in range(12))),
    "names and a subject with commas, quotes and accents": sample(
        5,
        to_name='Zoë "Z" Müller, PhD',
        from_name="Acme, Inc.",
        subject="Ça va? «Réponse» requise",
    ),
    "an address with a plus and a subdomain": sample(6, to_email="ana+billing@eu.acme.test"),
}


@pytest.mark.parametrize("name", list(EMAILS))
@pytest.mark.parametrize("sandbox", [False, True])
def test_one_email_is_the_same_json(name: str, sandbox: bool) -> None:
    out = EMAILS[name]
    built = sendgrid_payload(out, sandbox=sandbox)
    assert built == by_hand(out, sandbox=sandbox)
    # key order aside, the very same JSON on the wire
    assert json.dumps(built, sort_keys=True) == json.dumps(
        by_hand(out, sandbox=sandbox), sort_keys=True
    )


def test_a_request_of_many_is_the_same_json_in_the_same_order() -> None:
    outs = [sample(n, subject=f"Updates {n}") for n in range(7)]
    built = sendgrid_batch_payload(outs)
    assert built == by_hand_batch(outs)
    assert [p["to"][0]["email"] for p in built["personalizations"]] == [o.to_email for o in outs]
    assert all("substitutions" in p for p in built["personalizations"])
    plain = [sample(n, html=None, categories=("a", "b", "c")) for n in range(3)]
    assert sendgrid_batch_payload(plain, sandbox=True) == by_hand_batch(plain, sandbox=True)


def test_what_the_helpers_refuse_fails_at_once_and_sends_nothing() -> None:
    # the helpers refuse content that begins like an API key; no server listens on port 9,
    # so reaching the network would fail otherwise
    transport = SendgridTransport("key", "http://127.0.0.1:9")
    try:
        with pytest.raises(TransportError) as refused:
            transport.send(sample(7, text="SG.abc123.def456 is the key\n"))
    finally:
        transport.close()
    assert refused.value.permanent and not refused.value.maybe_sent
    assert "API Key" in refused.value.reason
