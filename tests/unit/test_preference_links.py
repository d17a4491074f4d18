"""Preference links: their tokens (never an unsubscribe token, nor the other way round), the
footer line every non-transactional email carries, and what a posted form chooses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cadence.config import SenderSettings
from cadence.delivery.compose import compose, unsubscribe_link
from cadence.delivery.render import Renderer
from cadence.delivery.transports.sendgrid import batch_key, sendgrid_batch_payload
from cadence.delivery.unsubscribe import (
    ExpiredToken,
    InvalidToken,
    PreferencesClaim,
    check_preferences_token,
    check_token,
    choose_url,
    make_preferences_token,
    make_token,
)
from cadence.feedback.preferences import Refused, read_choice
from cadence.model import Customer, Email, Message, Reachability

SECRET = b"s3cret-key"
AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
YEAR = timedelta(days=365)
SENDER = SenderSettings(email="news@vendor.test", name="Vendor")


def test_a_preference_token_names_its_customer_and_lives_as_long_as_an_unsubscribe_one() -> None:
    token = make_preferences_token(SECRET, "c-17", AT)
    assert check_preferences_token(SECRET, token, AT + YEAR, YEAR) == PreferencesClaim("c-17", AT)
    with pytest.raises(ExpiredToken) as late:
        check_preferences_token(SECRET, token, AT + YEAR + timedelta(seconds=1), YEAR)
    assert late.value.claim == PreferencesClaim("c-17", AT)
    with pytest.raises(InvalidToken):
        check_preferences_token(b"another secret", token, AT, YEAR)


def test_one_kind_of_link_is_never_the_other() -> None:
    for categories in (None, ["tip"], []):
        unsubscribe = make_token(SECRET, "c-17", categories, AT)
        with pytest.raises(InvalidToken):
            check_preferences_token(SECRET, unsubscribe, AT, YEAR)
    preferences = make_preferences_token(SECRET, "c-17", AT)
    with pytest.raises(InvalidToken):
        check_token(SECRET, preferences, AT, YEAR)
    # the same payload, signed for each: the signatures differ
    assert make_token(SECRET, "c-17", None, AT).split(".")[0] == preferences.split(".")[0]
    assert make_token(SECRET, "c-17", None, AT) != preferences


@pytest.fixture
def renderer(tmp_path: Path) -> Renderer:
    (tmp_path / "note.subject.j2").write_text("News for {{ customer.name }}")
    (tmp_path / "note.text.j2").write_text("Hello {{ customer.name }}")
    (tmp_path / "note.html.j2").write_text("<html><body><p>Hello</p></body></html>")
    return Renderer(tmp_path)


def _email(cid: str, transactional: bool = False) -> tuple[Email, Message]:
    m = Message(
        f"m-{cid}", cid, "marketing", category="tip", template="note", transactional=transactional
    )
    e = Email(f"e-{cid}", cid, AT, (m.id,), "marketing", "tip", transactional)
    return e, m


def test_every_listed_email_offers_the_preference_page_above_the_unsubscribe_link(
    renderer: Renderer,
) -> None:
    ana = Customer("c-17", "ana@acme.test", "Ana")
    email, m = _email("c-17")
    url = unsubscribe_link("https://mail.vendor.test", SECRET, "c-17", [m], AT)
    out = compose(email, ana, [m], renderer, SENDER, url, AT)
    choose = choose_url(url)
    assert choose == url + "/preferences"
    assert out.text.endswith(
        f"--\nTo choose which emails you get and how often, open: {choose}\n"
        f"To stop receiving these emails, open: {url}\n"
    )
    assert out.html is not None
    assert f'<a href="{choose}"' in out.html and "Choose which emails you get" in out.html
    assert out.html.index(choose) < out.html.index(f'href="{url}"')
    assert out.header("List-Unsubscribe") == f"<{url}>"  # as it was
    receipt, r = _email("c-17", transactional=True)
    sent = compose(receipt, ana, [r], renderer, SENDER, None, AT)
    assert "/preferences" not in sent.text and "choose which emails" not in sent.text


def test_copies_for_many_customers_still_go_in_one_sendgrid_request(renderer: Renderer) -> None:
    # each copy's preference link is its unsubscribe link plus a path: SendGrid's per-copy
    # substitution of the unsubscribe link fills in both
    outs = []
    for cid in ("c-1", "c-2", "c-3"):
        email, m = _email(cid)
        url = unsubscribe_link("https://mail.vendor.test", SECRET, cid, [m], AT)
        outs.append(compose(email, Customer(cid, f"{cid}@acme.test", "You"), [m], renderer,
                            SENDER, url, AT))  # fmt: skip
    assert batch_key(outs[0]) is not None
    assert len({batch_key(o) for o in outs}) == 1
    payload = sendgrid_batch_payload(outs)
    for out, one in zip(outs, payload["personalizations"], strict=True):
        (url,) = one["substitutions"].values()
        text = payload["content"][0]["value"].replace(*one["substitutions"].popitem())
        assert text == out.text and choose_url(url) in text


def _customer(left: set[str] | None = None, most: int | None = None) -> Customer:
    reach = Reachability(unsubscribed_categories=frozenset(left or ()), max_per_week=most)
    return Customer("c-17", "ana@acme.test", "Ana", reach=reach)


def test_the_categories_left_are_those_shown_and_not_ticked_plus_those_left_unseen() -> None:
    form = {"shown": ["tip", "offer", "news"], "want": ["tip"], "often": ["all"]}
    choice = read_choice(form, _customer(left={"survey", "tip"}))
    assert choice.left == ("news", "offer", "survey")  # tip wanted again; survey never shown
    assert choice.max_per_week is None
    # a category ticked that the page never showed is not one to decide on
    assert read_choice({"want": ["x"], "often": ["all"]}, _customer()).left == ()


@pytest.mark.parametrize(
    ("often", "number", "most"),
    [("cap", "1", 1), ("cap", " 14 ", 14), ("cap", "3", 3), ("digest", "", 1), ("all", "9", None)],
)
def test_how_often(often: str, number: str, most: int | None) -> None:
    form = {"often": [often], "per_week": [number]}
    assert read_choice(form, _customer()).max_per_week == most


@pytest.mark.parametrize(
    "form",
    [
        {"often": ["cap"], "per_week": ["0"]},
        {"often": ["cap"], "per_week": ["15"]},
        {"often": ["cap"], "per_week": ["-1"]},
        {"often": ["cap"], "per_week": ["2.5"]},
        {"often": ["cap"], "per_week": ["²"]},
        {"often": ["cap"], "per_week": ["9" * 5000]},
        {"often": ["cap"]},
        {"often": ["sometimes"]},
        {},
    ],
)
def test_a_choice_that_is_not_one_is_refused(form: dict[str, list[str]]) -> None:
    with pytest.raises(Refused):
        read_choice(form, _customer())
