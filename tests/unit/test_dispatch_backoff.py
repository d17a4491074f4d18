"""Retry waits after a temporary failure: a floor, doubling, jitter, a cap; the provider's own
reset honoured within the cap, as a delay on this host's clock."""

from __future__ import annotations

import time
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from cadence.delivery.transports.sendgrid import MAX_WAIT, _wait_for
from cadence.flows.sending import BACKOFF_BASE, BACKOFF_CAP, MAX_ATTEMPTS, backoff

ASKED = st.none() | st.timedeltas(min_value=timedelta(0), max_value=MAX_WAIT)


@given(attempts=st.integers(min_value=0, max_value=10_000), asked=ASKED)
def test_a_wait_is_never_below_the_floor_nor_above_the_cap(
    attempts: int, asked: timedelta | None
) -> None:
    wait = backoff(attempts, asked)
    assert BACKOFF_BASE / 2 <= wait <= BACKOFF_CAP
    if asked is not None:
        assert wait >= min(asked, BACKOFF_CAP)  # the provider's wait, within the cap


def test_the_retries_are_spread_over_minutes_not_seconds() -> None:
    """However the provider answers, the attempts an email gets take minutes: a reset in the
    past or at this very second can no longer spend them all in a few seconds."""
    for asked in (None, timedelta(0), timedelta(seconds=1)):
        shortest = min(
            sum((backoff(n, asked) for n in range(MAX_ATTEMPTS - 1)), timedelta())
            for _ in range(200)
        )
        assert shortest > timedelta(minutes=2)


def test_the_reset_header_is_read_as_a_delay_on_this_hosts_clock() -> None:
    now = time.time()
    assert _wait_for(str(int(now) - 3600)) == timedelta(0)  # in the past: no wait asked
    soon = _wait_for(str(int(now) + 60))
    assert soon is not None and timedelta(seconds=58) <= soon <= timedelta(seconds=61)
    # the year 5138, or a number no platform's clock holds: the longest wait, no overflow
    assert _wait_for("99999999999") == MAX_WAIT
    assert _wait_for("1" + "0" * 400) == MAX_WAIT
    assert _wait_for("soon") is None and _wait_for(None) is None and _wait_for("nan") is None
