"""The one parser of ISO 8601 times: what it takes, and what it refuses with a suggestion.

Python's `datetime.fromisoformat` reads any character after a date as the separator before a
time, so `2026-12-01+01:00` would be one o'clock with no offset and `2026-12-01Z` midnight with
none: the parser must call both a date, and suggest the midnight the user most likely meant.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from cadence.engine.scope import to_time
from cadence.ingest.records import aware
from cadence.instants import DateOnly, NoOffset, parse_instant


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2026-12-01T09:00:00Z", datetime(2026, 12, 1, 9, tzinfo=UTC)),
        ("2026-12-01T09:00z", datetime(2026, 12, 1, 9, tzinfo=UTC)),
        ("2026-12-01 09:00+02:00", datetime(2026, 12, 1, 7, tzinfo=UTC)),
        ("2026-12-01T09:00:00.5-05:00", datetime(2026, 12, 1, 14, 0, 0, 500000, tzinfo=UTC)),
    ],
)
def test_a_time_with_an_offset_is_read_as_utc(text: str, instant: datetime) -> None:
    got = parse_instant(text)
    assert got == instant and got.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("2026-12-01", "2026-12-01T00:00:00Z"),
        ("2026-12-01Z", "2026-12-01T00:00:00Z"),
        ("2026-12-01z", "2026-12-01T00:00:00Z"),
        ("2026-12-01+00:00", "2026-12-01T00:00:00Z"),
        ("2026-12-01+01:00", "2026-12-01T00:00:00+01:00"),
        ("2026-12-01-0500", "2026-12-01T00:00:00-0500"),
        ("20261201", "20261201T00:00:00Z"),
    ],
)
def test_a_date_is_refused_with_its_midnight_suggested(text: str, suggestion: str) -> None:
    with pytest.raises(DateOnly) as caught:
        parse_instant(text)
    assert caught.value.suggestion == suggestion
    # what it suggests is itself a time the parser takes
    assert parse_instant(suggestion).tzinfo is UTC


def test_a_time_without_an_offset_is_refused() -> None:
    with pytest.raises(NoOffset):
        parse_instant("2026-12-01T09:00")


@pytest.mark.parametrize("text", ["soon", "2026-12-01X09:00Z", "2026-13-01T09:00Z", ""])
def test_what_is_not_iso_8601_is_a_plain_value_error(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_instant(text)
    assert not isinstance(caught.value, (DateOnly, NoOffset))


def test_input_records_and_rule_helpers_say_the_same_through_it() -> None:
    with pytest.raises(ValueError, match=r"is a date, not a time; write 2026-12-01T00:00:00Z$"):
        aware("2026-12-01Z")
    with pytest.raises(
        ValueError, match=r"is a date, not a time; write 2026-12-01T00:00:00\+01:00"
    ):
        to_time("2026-12-01+01:00")
    with pytest.raises(ValueError, match="has no UTC offset"):
        to_time("2026-12-01T09:00")
    plus_two = timezone(timedelta(hours=2))
    assert to_time("2026-12-01T09:00+02:00") == datetime(2026, 12, 1, 9, tzinfo=plus_two)
    assert aware("2026-12-01T09:00+02:00") == datetime(2026, 12, 1, 7, tzinfo=UTC)
