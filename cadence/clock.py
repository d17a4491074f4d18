"""The one place that reads the wall clock. Everything else is handed a time."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


class NoOffset(ValueError):
    """An ISO 8601 time without a UTC offset: which instant it names is unknown."""


def parse_instant(text: str) -> datetime:
    """An ISO 8601 time with an offset (`Z` allowed), in UTC. ValueError if it is not ISO
    8601; NoOffset if it has no offset."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise NoOffset(text)
    return value.astimezone(UTC)
