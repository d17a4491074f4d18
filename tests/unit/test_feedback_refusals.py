"""What the feedback endpoints refuse, decided by the pure modules with the time passed in:
a signed webhook post from too long ago or too far ahead, an unsubscribe link past its time
to live."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cadence.config import UnsubscribeSettings
from cadence.delivery.unsubscribe import (
    ExpiredToken,
    InvalidToken,
    check_token,
    make_token,
    verify_token,
)
from cadence.feedback.webhook import MAX_SIGNATURE_AGE, MAX_SIGNATURE_AHEAD, stale_signature

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def at(delta: timedelta) -> str:
    return str(int((NOW + delta).timestamp()))


@pytest.mark.parametrize(
    "delta",
    [timedelta(0), -timedelta(seconds=5), -MAX_SIGNATURE_AGE, MAX_SIGNATURE_AHEAD],
)
def test_a_recent_signature_is_accepted(delta: timedelta) -> None:
    assert stale_signature(at(delta), NOW) is None


def test_a_signature_more_than_a_day_old_is_a_replay() -> None:
    why = stale_signature(at(-MAX_SIGNATURE_AGE - timedelta(seconds=1)), NOW)
    assert why is not None and "signed 1 day ago" in why and "replay" in why
    ancient = stale_signature("1000000000", NOW)  # 2001-09-09, the example
    assert ancient is not None and "2001-09-09" in ancient and "replay" in ancient


def test_a_signature_from_the_future_is_refused() -> None:
    why = stale_signature(at(MAX_SIGNATURE_AHEAD + timedelta(minutes=1)), NOW)
    assert why is not None and "6 minutes in the future" in why


@pytest.mark.parametrize("header", [None, "", "soon", "-5", "1.5", "١٢٣", "9" * 30])
def test_a_timestamp_that_is_not_unix_seconds_is_refused(header: str | None) -> None:
    why = stale_signature(header, NOW)
    assert why is not None and "X-Twilio-Email-Event-Webhook-Timestamp" in why


# -- unsubscribe links ---------------------------------------------------------------------

SECRET = b"a secret"
TTL = timedelta(days=365)


def test_a_link_within_its_time_to_live_is_valid() -> None:
    token = make_token(SECRET, "c-17", ["tip"], NOW - TTL)
    assert check_token(SECRET, token, NOW, TTL) == verify_token(SECRET, token)


def test_a_link_older_than_its_time_to_live_is_expired_not_just_invalid() -> None:
    token = make_token(SECRET, "c-17", None, NOW - TTL - timedelta(seconds=1))
    with pytest.raises(ExpiredToken, match=r"more than 365d ago \(unsubscribe.token_ttl\)") as e:
        check_token(SECRET, token, NOW, TTL)
    assert e.value.claim.customer_id == "c-17" and isinstance(e.value, InvalidToken)
    assert check_token(SECRET, token, NOW, TTL * 2).customer_id == "c-17"


def test_a_forged_old_link_is_invalid_not_expired() -> None:
    forged = make_token(b"someone else's", "c-17", None, NOW - TTL * 2)
    with pytest.raises(InvalidToken) as e:
        check_token(SECRET, forged, NOW, TTL)
    assert not isinstance(e.value, ExpiredToken)  # only a genuine link learns it expired


def test_the_default_time_to_live_is_a_year() -> None:
    assert UnsubscribeSettings().token_ttl == timedelta(days=365)
