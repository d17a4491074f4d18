"""ISO 8601 instants as cadence reads them, in one place: the command line, input records,
a preview asked of the daemon and the rules' `days_since` all take a time with an offset and
refuse a date or a time without one, each error saying what to write instead."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from cadence.words import show

_OFFSET = re.compile(r"[Zz]|[+-]\d{2}(:?\d{2})?")


class NoOffset(ValueError):
    """An ISO 8601 time without a UTC offset: which instant it names is unknown."""


class DateOnly(ValueError):
    """A date where a time is wanted (`2026-12-01`, `2026-12-01Z`): `suggestion` is its
    midnight, with the offset it was written with, else UTC."""

    def __init__(self, text: str, suggestion: str) -> None:
        super().__init__(text)
        self.suggestion = suggestion


def parse_instant(text: str) -> datetime:
    """An ISO 8601 time with an offset (`Z` allowed), in UTC. ValueError if it is not ISO
    8601; DateOnly if it is a date; NoOffset if it has no offset.

    Python reads any character after a date as the separator before a time, so it takes
    `2026-12-01+01:00` for one o'clock with no offset: a date is told by what follows it,
    never by what Python made of it."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    date_length = 10 if text[4:5] == "-" else 8  # 2026-12-01, or 20261201
    rest = text[date_length:]
    if not rest or _OFFSET.fullmatch(rest):
        offset = rest if rest and rest not in ("z", "+00:00") else "Z"
        raise DateOnly(text, f"{text[:date_length]}T00:00:00{offset}")
    if rest[0] not in "Tt ":
        raise ValueError(f"{text!r}: a date and a time are joined by T")
    if value.tzinfo is None:
        raise NoOffset(text)
    return value.astimezone(UTC)


def read_instant(text: str) -> datetime:
    """`parse_instant`, its refusal said in one sentence a person can act on (an input
    record's field, an attribute a rule reads as a time)."""
    try:
        return parse_instant(text)
    except DateOnly as e:
        raise ValueError(f"{text} is a date, not a time; write {e.suggestion}") from None
    except NoOffset:
        raise ValueError(f"{text} has no UTC offset; write {text}Z or +01:00") from None
    except ValueError:
        raise ValueError(
            f"{show(text)} is not an ISO 8601 time; write it like 2026-11-02T09:00:00Z"
        ) from None
