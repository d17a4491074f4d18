"""Durations as people write them in rule and config files: `90s`, `90m`, `20h`, `7d`, `2w`."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PATTERN = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def parse_duration(text: object) -> timedelta:
    """Parse `90m`-style text; a ValueError names the accepted forms."""
    if isinstance(text, timedelta):
        return text
    if not isinstance(text, str):
        raise ValueError(f"a duration is text like 90m, 20h, 7d or 2w, not {text!r}")
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration: write a whole number and a unit, "
            "s (seconds), m (minutes), h (hours), d (days) or w (weeks), e.g. 20h or 7d"
        )
    number, unit = match.groups()
    return timedelta(**{_UNITS[unit]: int(number)})


def format_duration(delta: timedelta) -> str:
    """The shortest exact `7d`-style text for a duration."""
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
