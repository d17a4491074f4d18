"""Frequency caps: where the next email matching a limit may go, and what filled it.

A limit sees a sorted list of the matching emails' times ("points"). Its meaning, from the
contract: no window of length `per` ever holds more than `max` of them (equivalently, any
`max + 1` consecutive points span at least `per`); no two are closer than `min_gap`; with
`window: calendar`, no calendar day/week/month holds more than `max`.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cadence.rules.model import CalendarUnit, Limit


@dataclass(frozen=True, slots=True)
class Point:
    at: datetime
    id: str  # the email or recorded message that counts


@dataclass(frozen=True, slots=True)
class Blocked:
    """Why `t` is not allowed under one limit, and the earliest time worth trying next."""

    limit: Limit
    next_try: datetime
    counted: tuple[str, ...]


class PointSet:
    """The matching emails of one limit, kept sorted by time."""

    __slots__ = ("_ids", "_times")

    def __init__(self, points: list[Point] | None = None) -> None:
        ordered = sorted(points or [], key=lambda p: (p.at, p.id))
        self._times = [p.at for p in ordered]
        self._ids = [p.id for p in ordered]

    def add(self, point: Point) -> None:
        i = bisect.bisect_right(self._times, point.at)
        self._times.insert(i, point.at)
        self._ids.insert(i, point.id)

    def between(self, lo: datetime, hi: datetime) -> list[Point]:
        """Points with lo <= at < hi."""
        i = bisect.bisect_left(self._times, lo)
        j = bisect.bisect_left(self._times, hi)
        return [Point(self._times[k], self._ids[k]) for k in range(i, j)]

    def __len__(self) -> int:
        return len(self._times)


def check(limit: Limit, points: PointSet, t: datetime, tz: ZoneInfo) -> Blocked | None:
    """None if an email matching `limit` may go at `t`; else what blocks it."""
    if limit.min_gap is not None:
        near = points.between(t - limit.min_gap + _TICK, t + limit.min_gap)
        if near:
            latest = max(p.at for p in near)
            return Blocked(limit, latest + limit.min_gap, tuple(p.id for p in near))
    if limit.max is None:
        return None
    if limit.calendar is not None:
        start, end = calendar_period(t, limit.calendar, tz)
        inside = points.between(start, end)
        if len(inside) >= limit.max:
            return Blocked(limit, end, tuple(p.id for p in inside))
        return None
    if limit.per is None:
        return None
    return _check_rolling(limit, limit.max, limit.per, points, t)


# Points exactly `min_gap` apart are allowed; one microsecond closer is not.
_TICK = timedelta(microseconds=1)


def _check_rolling(
    limit: Limit, most: int, per: timedelta, points: PointSet, t: datetime
) -> Blocked | None:
    if most <= 0:
        return Blocked(limit, datetime.max.replace(tzinfo=t.tzinfo), ())
    nearby = points.between(t - per + _TICK, t + per)
    if len(nearby) < most:
        return None
    # Insert t and look at every run of most+1 consecutive points that contains it: each
    # must span at least `per`. The first run that does not tells where t may move to: just
    # past its earliest other member + per.
    times = [p.at for p in nearby]
    i = bisect.bisect_right(times, t)
    merged: list[Point | None] = [*nearby[:i], None, *nearby[i:]]
    for j in range(max(0, i - most), i + 1):
        if j + most >= len(merged):
            break
        run = merged[j : j + most + 1]
        first = run[0].at if run[0] is not None else t
        last = run[-1].at if run[-1] is not None else t
        if last - first < per:
            others = [p for p in run if p is not None]
            return Blocked(limit, others[0].at + per, tuple(p.id for p in others))
    return None


def calendar_period(t: datetime, unit: CalendarUnit, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The local calendar day, week (from Monday) or month holding t, as UTC-comparable
    aware datetimes."""
    local = t.astimezone(tz)
    day = local.date()
    if unit == CalendarUnit.DAY:
        first, after = day, day + timedelta(days=1)
    elif unit == CalendarUnit.WEEK:
        first = day - timedelta(days=day.weekday())
        after = first + timedelta(days=7)
    else:
        first = day.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
    midnight = datetime.min.time()
    return (
        datetime.combine(first, midnight, tzinfo=tz).astimezone(UTC),
        datetime.combine(after, midnight, tzinfo=tz).astimezone(UTC),
    )
