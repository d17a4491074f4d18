"""What the feedback endpoints refuse, decided by the pure modules with the time passed in:
a signed webhook post from too long ago or too far ahead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

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
