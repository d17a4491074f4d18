"""Reading SendGrid's Inbound Parse posts: the sender, the thread, who is a machine, and one
identity per email however often it is posted."""

from __future__ import annotations

import json

import pytest

from cadence.delivery.compose import OutgoingEmail
from cadence.delivery.mime import message_id
from cadence.feedback.inbound import (
    MAX_REFERENCES,
    MalformedInbound,
    form_fields,
    mask,
    read_reply,
)
from cadence.feedback.replies import key_matches
from tests.support.inbound_parse import multipart, reply_fields

ANA = "Ana Müller <Ana@Acme.test>"


def read(fields: dict[str, str], **kw: object):  # type: ignore[no-untyped-def]
    body, content_type = multipart(fields, **kw)  # type: ignore[arg-type]
    return read_reply(form_fields(body, content_type))


def test_the_fields_come_back_in_the_character_set_sendgrid_names() -> None:
    fields = reply_fields(ANA, "Re: Grüße", text="Schöne Grüße\n")
    body, content_type = multipart(
        fields, charsets={"text": "iso-8859-1", "subject": "utf-8"}, files={"attachment1": (
            "scan.pdf", bytes(range(256)))}
    )  # fmt: skip
    assert b"Sch\xf6ne" in body  # the text really is Latin-1 on the wire
    got = form_fields(body, content_type)
    assert got["text"] == "Schöne Grüße\n" and got["subject"] == "Re: Grüße"
    assert got["from"] == ANA
    assert "attachment1" not in got  # attachments are not read


def test_a_reply_names_its_sender_subject_and_the_emails_it_answers() -> None:
    ours = "<e-0123456789abcdef@vendor.test>"
    older = "<e-fedcba9876543210@vendor.test>"
    reply = read(
        reply_fields(
            ANA,
            "Re:   How is\n it going?",
            in_reply_to=ours,
            references=f"{older} <CAx1@mail.gmail.test> {ours}",
        )
    )
    assert reply.sender == "Ana@Acme.test"
    assert reply.subject == "Re: How is it going?"
    # In-Reply-To first, then References from the nearest; each id once
    assert reply.answers == ("e-0123456789abcdef", "CAx1", "e-fedcba9876543210")
    assert reply.automatic is None


def test_our_message_ids_map_back_to_the_email_they_were_made_from() -> None:
    out = OutgoingEmail(
        email_id="e-0123456789abcdef", customer_id="c-17", to_email="ana@acme.test",
        to_name=None, from_email="success@vendor.test", from_name=None, reply_to=None,
        subject="s", text="t", html=None, headers=(), message_ids=("m1",), transactional=False,
        categories=(),
    )  # fmt: skip
    reply = read(reply_fields(ANA, in_reply_to=message_id(out)))
    assert reply.answers == ("e-0123456789abcdef",)


def test_a_long_thread_is_read_from_its_nearest_end_only() -> None:
    refs = " ".join(f"<r{i}@x.test>" for i in range(60))
    reply = read(reply_fields(ANA, references=refs))
    assert len(reply.answers) == MAX_REFERENCES and reply.answers[0] == "r59"


def test_the_same_email_posted_twice_has_one_key_with_or_without_a_message_id() -> None:
    for fields in (reply_fields(ANA), reply_fields(ANA, message_id=None)):
        first = read(fields, boundary="one")
        again = read(fields, boundary="another-boundary")
        assert first.key == again.key
    assert read(reply_fields(ANA)).key != read(reply_fields(ANA, message_id="<other@x>")).key
    no_id = reply_fields(ANA, message_id=None)
    assert read(no_id).key != read({**no_id, "text": "something else"}).key


def test_the_envelope_names_the_sender_when_from_does_not() -> None:
    fields = reply_fields(ANA)
    fields["from"] = "undisclosed-recipients:;"
    fields["headers"] = fields["headers"].replace(f"From: {ANA}", "From: nobody")
    assert read(fields).sender == "Ana@Acme.test"
    fields["envelope"] = json.dumps({"to": ["replies@vendor.test"]})
    with pytest.raises(MalformedInbound, match="no sender"):
        read(fields)


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: auto-generated",
        "Precedence: bulk",
        "Precedence: auto_reply",
        "X-Autoreply: yes",
        "X-Autorespond: Out of office",
    ],
)
def test_out_of_office_and_other_machine_answers_are_told_apart(header: str) -> None:
    reply = read(reply_fields(ANA, "Automatic reply: away", extra_headers=header + "\n"))
    assert reply.automatic is not None
    assert read(reply_fields(ANA, extra_headers="Auto-Submitted: no\n")).automatic is None


def test_the_raw_mime_mode_is_read_too() -> None:
    raw = (
        f"From: {ANA}\r\nTo: replies@vendor.test\r\nSubject: =?utf-8?q?Re=3A_Gr=C3=BC=C3=9Fe?=\r\n"
        "Message-ID: <raw-1@acme.test>\r\nIn-Reply-To: <e-0123456789abcdef@vendor.test>\r\n"
        "\r\nThanks!\r\n"
    )
    reply = read({"email": raw, "envelope": "{}", "charsets": "{}", "to": "replies@vendor.test"})
    assert reply.sender == "Ana@Acme.test" and reply.subject == "Re: Grüße"
    assert reply.answers == ("e-0123456789abcdef",)
    assert reply.key == "message-id:raw-1@acme.test"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"from=ana%40acme.test", "application/x-www-form-urlencoded"),
        (b"{}", "application/json"),
        (b"--x--\r\n", "multipart/form-data"),  # no boundary
        (b"", "multipart/form-data; boundary=x"),
        (b"--x\r\n\r\n--x--\r\n", "multipart/form-data; boundary=x\r\nX-Evil: 1"),
    ],
)
def test_what_is_not_an_inbound_parse_post_is_refused(body: bytes, content_type: str) -> None:
    with pytest.raises(MalformedInbound):
        form_fields(body, content_type)


def test_the_key_is_compared_whole() -> None:
    assert key_matches("s3cret-key", "s3cret-key")
    for wrong in (None, "", "s3cret", "s3cret-key ", "S3CRET-KEY", "s3cret-keyX", "ä"):
        assert not key_matches("s3cret-key", wrong)
    assert not key_matches(None, "anything") and not key_matches("", "")


def test_addresses_in_the_log_are_masked() -> None:
    assert mask("ana.mueller@acme.test") == "a***@acme.test"
    assert mask("not an address") == "***"
