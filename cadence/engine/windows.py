"""Send windows in the customer's own time zone, across daylight-saving changes.

A window is a set of local weekdays and a local time span; the question the planner asks is
always "what is the earliest instant at or after `t` when this email may go?".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from cadence.model import Message
from cadence.rules.model import Rules, SendWindow

_MIDNIGHT = time(0, 0)
_DAY = timedelta(days=1)
#: how far ahead an opening is looked for (blackouts may shut a window for weeks); a window
#: shut for longer than this never opens, as far as the planner is concerned
_HORIZON_DAYS = 800
#: a window set whose openings never line up (e.g. 07:00-08:00 and 17:00-18:00) must not loop
_MAX_ALIGN_STEPS = 64


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def window_for(message: Message, rules: Rules) -> SendWindow | None:
    """The first send window whose filter matches; None means any time of day."""
    return rules.index.applicable(message).window


def for_country(window: SendWindow, country: str | None) -> SendWindow:
    """`window.for_country(country)`, one object per window and country (by identity, as
    in `_OPENINGS`): every customer of a country shares its openings, worked out once."""
    key = (id(window), country)
    found = _RESOLVED.get(key)
    if found is None or found[0] is not window:
        if len(_RESOLVED) > _MAX_OPENINGS:
            _RESOLVED.clear()
        found = _RESOLVED[key] = (window, window.for_country(country))
    return found[1]


_RESOLVED: dict[tuple[int, str | None], tuple[SendWindow, SendWindow]] = {}


def _local(day: date, at: time, tz: ZoneInfo) -> datetime:
    # zoneinfo resolves a wall time that does not exist (spring forward) with the offset in
    # force before the change, which lands after the gap: the window opens at the first real
    # instant, as a person would expect.
    return datetime.combine(day, at, tzinfo=tz)


def _span(day: date, window: SendWindow, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The window's opening on local `day`, as (start, end) in UTC."""
    start = _local(day, window.start, tz)
    if window.start == window.end:
        end = _local(day + timedelta(days=1), _MIDNIGHT, tz)
    elif window.end > window.start:
        end = _local(day, window.end, tz)
    else:  # runs past midnight into the next day
        end = _local(day + timedelta(days=1), window.end, tz)
    return start.astimezone(UTC), end.astimezone(UTC)


class _Openings:
    """One window's openings in one zone, by local day (ordinal), in UTC; None for a day the
    window skips. Worked out once: the same few windows, zones and days come up for customer
    after customer, and UTC times compare without asking the zone for an offset."""

    __slots__ = ("_ahead", "spans", "tz", "window")

    def __init__(self, window: SendWindow, tz: ZoneInfo) -> None:
        self.window, self.tz = window, tz
        self.spans: dict[int, tuple[datetime, datetime] | None] = {}
        self._ahead: dict[int, tuple[tuple[datetime, datetime], ...]] = {}

    def ahead(self, ordinal: int) -> tuple[tuple[datetime, datetime], ...]:
        """The openings that may hold or follow an instant of local day `ordinal`, in
        order: from the day before (an overnight window opened yesterday may still be
        open) to eight days after. One lookup instead of one per day on each question."""
        try:
            return self._ahead[ordinal]
        except KeyError:
            pass
        if len(self._ahead) > _MAX_DAYS:
            self._ahead.clear()
        days = range(ordinal - 1, ordinal + 9)
        found = self._ahead[ordinal] = tuple(s for d in days if (s := self.on(d)) is not None)
        return found

    def on(self, ordinal: int) -> tuple[datetime, datetime] | None:
        try:
            return self.spans[ordinal]
        except KeyError:
            pass
        if len(self.spans) > _MAX_DAYS:  # a daemon that runs for years
            self.spans.clear()
        day = date.fromordinal(ordinal)
        window = self.window
        found = None
        if day.weekday() in window.days and (not window.has_closures or not window.closed(day)):
            found = _span(day, window, self.tz)
            midnight = _local(day + _DAY, _MIDNIGHT, self.tz)
            # an overnight window stops at midnight before a day that is shut
            if window.has_closures and found[1] > midnight and window.closed(day + _DAY):
                found = (found[0], midnight.astimezone(UTC))
        self.spans[ordinal] = found
        return found


# Keyed by identity, not equality: hashing a frozen window hashes its filter and day set on
# every call, and the planner asks for a window's openings for every message it places. The
# entry keeps both objects, so an id is never reused while its entry lives, and a stale entry
# is recognised and replaced.
_OPENINGS: dict[tuple[int, int], _Openings] = {}
_MAX_DAYS = 4096
_MAX_OPENINGS = 4096


def _openings(window: SendWindow, tz: ZoneInfo) -> _Openings:
    key = (id(window), id(tz))
    found = _OPENINGS.get(key)
    if found is None or found.window is not window or found.tz is not tz:
        if len(_OPENINGS) > _MAX_OPENINGS:
            _OPENINGS.clear()
        found = _OPENINGS[key] = _Openings(window, tz)
    return found


def next_open(t: datetime, window: SendWindow | None, tz: ZoneInfo) -> datetime | None:
    """The earliest instant >= t inside the window (t itself when open); None if never."""
    if window is None:
        return t
    if not window.days:
        return None
    openings = _openings(window, tz)
    first = t.astimezone(tz).toordinal()
    # each lookup covers ten days from the day before; the next one starts nine days on
    for ordinal in range(first, first + _HORIZON_DAYS, 9):
        for start, end in openings.ahead(ordinal):
            if end > t:
                return max(t, start)
        if not window.has_closures:  # a plain window opens within any week
            return None
    return None


def next_open_all(
    t: datetime, windows: Sequence[SendWindow | None], tz: ZoneInfo
) -> datetime | None:
    """The earliest instant >= t when every window is open at once (a merged email must sit
    inside the window of each member); None if they never line up."""
    if len(windows) == 1:  # most emails: next_open's answer is open (it is idempotent)
        return next_open(t, windows[0], tz)
    distinct: list[SendWindow] = []
    for window in windows:  # by identity: see _OPENINGS
        if window is not None and not any(window is d for d in distinct):
            distinct.append(window)
    current = t
    for _ in range(_MAX_ALIGN_STEPS):
        moved = False
        for window in distinct:
            opened = next_open(current, window, tz)
            if opened is None:
                return None
            if opened > current:
                current, moved = opened, True
        if not moved:
            return current
    return None


def next_local_time(t: datetime, at: time, days: frozenset[int] | None, tz: ZoneInfo) -> datetime:
    """The first local `at` on an allowed day at or after t (merge rules with `at`)."""
    local_day = t.astimezone(tz).date()
    for offset in range(0, 8):
        day = local_day + timedelta(days=offset)
        if days is not None and day.weekday() not in days:
            continue
        candidate = _local(day, at, tz)
        if candidate >= t:
            return candidate.astimezone(UTC)
    raise ValueError("merge rule `days` is empty")  # the loader rejects this; defensive
