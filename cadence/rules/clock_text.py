"""Days and times of day as rule files write them: `mon-fri`, `"09:00-17:30"`, `"09:00"`.
Each parser raises ValueError with a sentence the loader shows at the value's place."""

from __future__ import annotations

import re
from datetime import time

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_AT = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")


def parse_days(text: str) -> frozenset[int]:
    """`mon-fri`, `sat,sun`, `mon-sun`, `wed`, `fri-mon` (ranges wrap round the week)."""
    out: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        if "-" in part:
            first, _, last = part.partition("-")
            if first not in DAYS or last not in DAYS:
                raise ValueError(f"`{part}` is not a range of days like mon-fri")
            i, j = DAYS.index(first), DAYS.index(last)
            while True:
                out.add(i)
                if i == j:
                    break
                i = (i + 1) % 7
        elif part in DAYS:
            out.add(DAYS.index(part))
        else:
            raise ValueError(f"`{part}` is not a day: write mon, tue, wed, thu, fri, sat or sun")
    return frozenset(out)


def _clock(h: str, m: str, allow_24: bool = False) -> time:
    hour, minute = int(h), int(m)
    if allow_24 and hour == 24 and minute == 0:
        return time(0, 0)
    if hour > 23 or minute > 59:
        raise ValueError(f"{h}:{m} is not a time of day")
    return time(hour, minute)


def parse_hours(text: str) -> tuple[time, time]:
    """`"09:00-17:30"`; an end before the start runs past midnight; `00:00-24:00` is all day."""
    match = _HOURS.match(text)
    if match is None:
        raise ValueError(f'`{text}` is not hours like "09:00-17:30"')
    start = _clock(match[1], match[2])
    end = _clock(match[3], match[4], allow_24=True)
    return start, end


def parse_at(text: str) -> time:
    match = _AT.match(text)
    if match is None:
        raise ValueError(f'`{text}` is not a local time like "09:00"')
    return _clock(match[1], match[2])
