"""Composing emails: sender, recipient, digest, unsubscribe headers, and the MIME that results."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from cadence.config import RoleSenderSettings, SenderSettings
from cadence.delivery.compose import ComposeError, OutgoingEmail, compose, unsubscribe_link
from cadence.delivery.mime import message_id, to_bytes, to_mime
from cadence.delivery.render import Renderer, RenderError
from cadence.delivery.unsubscribe import verify_token
from cadence.model import Customer, Email, Message, Sender

NOW = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
URL = "http://localhost:8787/u/tok"
SENDER = SenderSettings(email="success@vendor.test", name="Vendor", reply_to="help@vendor.test")
ANA = Customer(
    "c-17", "ana@acme.test", "Ana Müller", "America/New_York", "acme",
    {"plan": "pro", "owner_email": "kim@vendor.test", "owner_name": "Kim"},
)  # fmt: skip


@pytest.fixture
def renderer(tmp_path: Path) -> Renderer:
    files = {
        "note.subject.j2": "Note for {{ customer.name }}",
        "note.text.j2": "Hi {{ customer.name }}, {{ data.what }}. -- {{ sender.name }}",
        "note.html.j2": "<p>Hi {{ customer.name }}, {{ data.what }}.</p>",
        "digest.subject.j2": "A few updates from {{ sender.name }}",
        "digest.text.j2": (
            "{% for item in items %}* {{ item.subject }} ({{ item.role }}, {{ item.sender.name }})"
            "\n{{ item.body_text }}{% endfor %}"
        ),
        "weekly.subject.j2": "Your week",
        "weekly.text.j2": "{{ items | length }} things",
        "alert.subject.j2": "{{ customer.name }}: {{ data.what }}",
        "alert.text.j2": "{{ customer.id }} {{ data.what }}{{ unsubscribe_url or '' }}",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return Renderer(tmp_path)


def message(mid: str, **kw: object) -> Message:
    fields: dict[str, object] = {
        "id": mid,
        "customer_id": "c-17",
        "role": "marketing",
        "category": "announcement",
        "template": "note",
        "data": {"what": f"news {mid}"},
    }
    fields.update(kw)
    return Message(**fields)  # type: ignore[arg-type]


def planned(*members: Message, **kw: object) -> Email:
    fields: dict[str, object] = {
        "id": "e-0123456789abcdef",
        "customer_id": "c-17",
        "send_at": NOW,
        "members": tuple(m.id for m in members),
        "role": members[0].role,
        "category": members[0].category,
        "transactional": all(m.transactional for m in members),
    }
    fields.update(kw)
    return Email(**fields)  # type: ignore[arg-type]


def parse(out: OutgoingEmail) -> EmailMessage:
    parsed = message_from_bytes(to_bytes(out, NOW), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def lf(text: str) -> str:
    """Contents keep the wire's CRLF line ends when parsed back."""
    return text.replace("\r\n", "\n")


def test_single_marketing_email(renderer: Renderer) -> None:
    m = message("mkt-301")
    out = compose(planned(m), ANA, [m], renderer, SENDER, URL, NOW)
    assert (out.to_email, out.to_name) == ("ana@acme.test", "Ana Müller")
    assert (out.from_email, out.from_name, out.reply_to) == (
        "success@vendor.test",
        "Vendor",
        "help@vendor.test",
    )
    assert out.subject == "Note for Ana Müller"
    assert out.text.startswith("Hi Ana Müller, news mkt-301. -- Vendor\n")
    assert out.text.endswith(f"To stop receiving these emails, open: {URL}\n")
    assert out.html is not None and f'<a href="{URL}">Unsubscribe</a>' in out.html
    assert out.header("List-Unsubscribe") == f"<{URL}>"
    assert out.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
    assert out.header("X-Cadence-Customer") == "c-17"
    assert out.header("X-Cadence-Messages") == "mkt-301"
    assert out.message_ids == ("mkt-301",)
    assert out.categories == ("announcement",)
    assert not out.transactional


def test_the_date_is_the_time_it_was_composed_at_not_the_clocks(renderer: Renderer) -> None:
    m = message("mkt-1")
    out = compose(planned(m), ANA, [m], renderer, SENDER, URL, NOW)
    later = datetime(2031, 1, 1, tzinfo=UTC)  # the wall clock, years after a virtual pass
    parsed = message_from_bytes(to_bytes(out, later), policy=policy.default)
    assert parsed["Date"].datetime == NOW
    by_hand = replace(out, composed_at=None)  # no pass: the transport's clock
    assert (
        message_from_bytes(to_bytes(by_hand, later), policy=policy.default)["Date"].datetime
        == later
    )


def test_transactional_email_has_no_unsubscribe(renderer: Renderer) -> None:
    m = message("bill-9", role="billing", category="receipt", transactional=True)
    out = compose(planned(m), ANA, [m], renderer, SENDER, None, NOW)
    assert out.transactional
    assert out.header("List-Unsubscribe") is None
    assert out.header("List-Unsubscribe-Post") is None
    assert "To stop receiving" not in out.text
    assert out.header("X-Cadence-Messages") == "bill-9"
    # a link handed in anyway is not used
    out = compose(planned(m), ANA, [m], renderer, SENDER, URL, NOW)
    assert out.header("List-Unsubscribe") is None


def test_non_transactional_email_needs_a_link(renderer: Renderer) -> None:
    m = message("mkt-301")
    with pytest.raises(ComposeError, match="needs an unsubscribe link"):
        compose(planned(m), ANA, [m], renderer, SENDER, None, NOW)


def test_a_messages_own_sender_is_used_alone(renderer: Renderer) -> None:
    m = message("cs-12", role="success", sender=Sender("kim@vendor.test", "Kim from Vendor"))
    out = compose(planned(m), ANA, [m], renderer, SENDER, URL, NOW)
    assert (out.from_email, out.from_name, out.reply_to) == (
        "kim@vendor.test",
        "Kim from Vendor",
        None,
    )
    assert "-- Kim from Vendor" in out.text


def test_digest_of_several_members(renderer: Renderer) -> None:
    a = message(
        "cs-12", role="success", category="onboarding", sender=Sender("kim@vendor.test", "Kim")
    )
    b = message("prd-7", role="product", category="product-tour", subject="Tour", body_text="Look")
    out = compose(planned(a, b), ANA, [b, a], renderer, SENDER, URL, NOW)
    assert out.subject == "A few updates from Vendor"
    assert out.from_email == "success@vendor.test"  # a digest speaks for the vendor
    assert out.text.startswith(
        "* Note for Ana Müller (success, Kim)\nHi Ana Müller, news cs-12. -- Kim\n"
        "* Tour (product, Vendor)\nLook\n"
    )
    assert out.header("X-Cadence-Messages") == "cs-12,prd-7"
    assert out.message_ids == ("cs-12", "prd-7")
    assert out.categories == ("onboarding", "product-tour")
    assert out.html is None  # the digest template has no html part


SENDERS = {
    "sales": RoleSenderSettings(email="sales@vendor.test", name="Vendor Sales"),
    "support": RoleSenderSettings(email="support@vendor.test", reply_to="tickets@vendor.test"),
}


def test_a_sales_email_goes_from_the_sales_sender(renderer: Renderer) -> None:
    m = message("sls-4", role="sales", category="offer")
    out = compose(planned(m), ANA, [m], renderer, SENDER, URL, NOW, SENDERS)
    # the role's own reply_to (none: replies go to sales@), not the default sender's
    assert (out.from_email, out.from_name, out.reply_to) == (
        "sales@vendor.test",
        "Vendor Sales",
        None,
    )
    assert "-- Vendor Sales" in out.text  # templates see the same sender
    # a role's sender without a name takes the default sender's; its reply_to is its own
    t = message("sup-2", role="support", category="ticket")
    out = compose(planned(t), ANA, [t], renderer, SENDER, URL, NOW, SENDERS)
    assert (out.from_email, out.from_name, out.reply_to) == (
        "support@vendor.test",
        "Vendor",
        "tickets@vendor.test",
    )
    # a role without one, and no senders at all: the default sender
    for senders in (SENDERS, {}):
        mk = message("mkt-9")
        out = compose(planned(mk), ANA, [mk], renderer, SENDER, URL, NOW, senders)
        assert (out.from_email, out.reply_to) == ("success@vendor.test", "help@vendor.test")


def test_a_messages_own_sender_beats_its_roles(renderer: Renderer) -> None:
    m = message("sls-5", role="sales", sender=Sender("lee@vendor.test", "Lee"))
    out = compose(planned(m), ANA, [m], renderer, SENDER, URL, NOW, SENDERS)
    assert (out.from_email, out.from_name, out.reply_to) == ("lee@vendor.test", "Lee", None)


def test_a_digest_of_one_role_goes_from_its_sender_else_the_default(renderer: Renderer) -> None:
    a = message("sls-1", role="sales", subject="One", body_text="first")
    b = message("sls-2", role="sales", subject="Two", body_text="second")
    out = compose(planned(a, b), ANA, [a, b], renderer, SENDER, URL, NOW, SENDERS)
    assert (out.from_email, out.from_name, out.reply_to) == (
        "sales@vendor.test",
        "Vendor Sales",
        None,
    )
    assert out.subject == "A few updates from Vendor Sales"
    # two roles: no one role speaks for the other; each item keeps its own voice
    c = message("prd-3", role="product", subject="Three", body_text="third")
    out = compose(planned(a, c), ANA, [a, c], renderer, SENDER, URL, NOW, SENDERS)
    assert (out.from_email, out.from_name, out.reply_to) == (
        "success@vendor.test",
        "Vendor",
        "help@vendor.test",
    )
    assert "* One (sales, Vendor Sales)\n" in out.text
    assert "* Three (product, Vendor)\n" in out.text


def test_merge_rules_template_is_used(renderer: Renderer) -> None:
    a, b = message("a"), message("b")
    out = compose(planned(a, b, template="weekly"), ANA, [a, b], renderer, SENDER, URL, NOW)
    assert out.subject == "Your week"
    assert out.text.startswith("2 things\n")


def test_owner_alert_goes_to_the_owner_without_unsubscribe(renderer: Renderer) -> None:
    m = message("pb:tell-the-owner:ev-90", role="success", template="alert", to="owner")
    out = compose(planned(m, to_owner=True), ANA, [m], renderer, SENDER, None, NOW)
    assert (out.to_email, out.to_name) == ("kim@vendor.test", "Kim")
    assert out.subject == "Ana Müller: news pb:tell-the-owner:ev-90"
    assert out.header("List-Unsubscribe") is None
    no_owner = replace(ANA, attributes={"plan": "pro"})
    with pytest.raises(ComposeError, match="no owner_email attribute"):
        compose(planned(m, to_owner=True), no_owner, [m], renderer, SENDER, None, NOW)


def test_missing_member_and_render_errors(renderer: Renderer) -> None:
    a, b = message("a"), message("b", template="nowhere")
    with pytest.raises(ComposeError, match="members not given: b"):
        compose(planned(a, b), ANA, [a], renderer, SENDER, URL, NOW)
    with pytest.raises(RenderError):
        compose(planned(a, b), ANA, [a, b], renderer, SENDER, URL, NOW)


def test_unsubscribe_link_covers_the_members_categories() -> None:
    members = [message("a", category="newsletter"), message("b", category="announcement")]
    link = unsubscribe_link("http://x.test", b"k", "c-17", members, NOW)
    claim = verify_token(b"k", link.rsplit("/u/", 1)[1])
    assert claim.customer_id == "c-17"
    assert claim.categories == ("announcement", "newsletter")
    link = unsubscribe_link("http://x.test", b"k", "c-17", [message("c", category=None)], NOW)
    assert verify_token(b"k", link.rsplit("/u/", 1)[1]).categories is None


def test_mime_round_trip(renderer: Renderer) -> None:
    m = message("mkt-301")
    long_url = "https://unsubscribe.vendor.test/u/" + "eyJjIjoiYy0xNyIsImsiOlsibmV3c2xldHRlciJd" * 3
    out = compose(planned(m), ANA, [m], renderer, SENDER, long_url, NOW)
    parsed = parse(out)
    assert parsed["From"] == "Vendor <success@vendor.test>"
    assert parsed["To"] == "Ana Müller <ana@acme.test>"
    assert parsed["Reply-To"] == "help@vendor.test"
    assert parsed["Subject"] == "Note for Ana Müller"
    assert parsed["Date"] == "Mon, 02 Nov 2026 14:00:00 +0000"
    assert parsed["Message-ID"] == "<e-0123456789abcdef@vendor.test>"
    assert parsed["X-Cadence-Customer"] == "c-17"
    assert parsed["X-Cadence-Messages"] == "mkt-301"
    assert parsed["List-Unsubscribe"] == f"<{long_url}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed.get_content_type() == "multipart/alternative"
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert text is not None and html is not None
    assert lf(text.get_content()) == out.text
    assert lf(html.get_content()) == out.html
    raw = to_bytes(out, NOW)
    assert b"\r\n" in raw
    assert f"List-Unsubscribe: <{long_url}>".encode() in raw  # not folded into encoded words


def test_text_only_mime(renderer: Renderer) -> None:
    m = message("bill-9", transactional=True, subject="Receipt", body_text="Paid: 49 EUR")
    out = compose(planned(m), ANA, [m], renderer, SENDER, None, NOW)
    parsed = parse(out)
    assert parsed.get_content_type() == "text/plain"
    assert lf(parsed.get_content()) == "Paid: 49 EUR\n"
    assert parsed["List-Unsubscribe"] is None


def test_message_id_is_deterministic_and_valid(renderer: Renderer) -> None:
    m = message("mkt-301")
    out = compose(planned(m, id="e:odd id"), ANA, [m], renderer, SENDER, URL, NOW)
    assert message_id(out) == "<e-odd-id@vendor.test>"
    assert to_mime(out, NOW)["Message-ID"] == to_mime(out, NOW)["Message-ID"]
