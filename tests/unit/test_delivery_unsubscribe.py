"""Unsubscribe tokens: what one signs comes back; anything else is InvalidToken."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cadence.delivery.unsubscribe import (
    InvalidToken,
    UnsubscribeClaim,
    make_token,
    unsubscribe_url,
    verify_token,
)

SECRET = b"s3cret-key"
AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_round_trip() -> None:
    token = make_token(SECRET, "c-17", ["newsletter", "announcement"], AT)
    claim = verify_token(SECRET, token)
    assert claim == UnsubscribeClaim("c-17", ("announcement", "newsletter"), AT)


def test_all_categories_is_none() -> None:
    claim = verify_token(SECRET, make_token(SECRET, "c-17", None, AT))
    assert claim.categories is None
    assert verify_token(SECRET, make_token(SECRET, "c-17", [], AT)).categories == ()


def test_offset_times_are_kept_as_utc() -> None:
    local = datetime(2026, 11, 2, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    assert verify_token(SECRET, make_token(SECRET, "c", None, local)).issued_at == AT


def test_token_is_url_safe() -> None:
    token = make_token(SECRET, "c-17 ü/?&", ["a b"], AT)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert "=" not in token
    assert verify_token(SECRET, token).customer_id == "c-17 ü/?&"


def test_wrong_secret() -> None:
    with pytest.raises(InvalidToken):
        verify_token(b"other", make_token(SECRET, "c-17", None, AT))


def test_altered_payload_with_the_old_signature() -> None:
    token = make_token(SECRET, "c-17", ["newsletter"], AT)
    _, signature = token.split(".")
    forged_body = {"c": "c-99", "k": ["newsletter"], "t": int(AT.timestamp())}
    forged = base64.urlsafe_b64encode(json.dumps(forged_body).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        verify_token(SECRET, f"{forged}.{signature}")


@pytest.mark.parametrize(
    "bad", ["", ".", "abc", "abc.", ".abc", "a.b.c", "!!!.???", "YWJj.YWJj", "x" * 500]
)
def test_malformed(bad: str) -> None:
    with pytest.raises(InvalidToken):
        verify_token(SECRET, bad)


def test_signed_but_malformed_payload_is_invalid() -> None:
    # even a correctly signed payload must have the right shape
    from cadence.delivery import unsubscribe as u

    payload = u._b64(b'{"c": 17}')
    token = f"{payload}.{u._b64(u._sign(SECRET, payload))}"
    with pytest.raises(InvalidToken, match="malformed"):
        verify_token(SECRET, token)


@given(position=st.integers(min_value=0, max_value=200), char=st.sampled_from("AQgw-_0z"))
def test_any_single_character_change_is_detected(position: int, char: str) -> None:
    token = make_token(SECRET, "c-17", ["newsletter"], AT)
    i = position % len(token)
    changed = token[:i] + char + token[i + 1 :]
    if changed == token:
        return
    with pytest.raises(InvalidToken):
        verify_token(SECRET, changed)


def test_naive_time_and_empty_secret_are_refused() -> None:
    with pytest.raises(ValueError):
        make_token(SECRET, "c", None, datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        make_token(b"", "c", None, AT)


def test_url() -> None:
    assert unsubscribe_url("http://localhost:8787/", "tok") == "http://localhost:8787/u/tok"
    assert unsubscribe_url("https://x.test/mail", "tok") == "https://x.test/mail/u/tok"
