"""Frequency caps: where the next email matching a limit may go, and what filled it.

A limit sees a sorted list of the matching emails' times ("points"). Its meaning, from the
contract: no window of length `per` ever holds more than `max` of them (equivalently, any
`max + 1` consecutive points span at least `per`); no two are closer than `min_gap`; with
`window: calendar`, no calendar day/week/month holds more than `max`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cadence.model import Message, Sent
from cadence.rules.model import CalendarUnit, Filter, Limit, Location, Rules, Scope


@dataclass(frozen=True, slots=True)
class Blocked:
    """Why `t` is not allowed under one limit, and the earliest time worth trying next."""

    limit: Limit
    next_try: datetime
    counted: tuple[str, ...]


class PointSet:
    """The matching emails of one limit: their times, kept sorted, and their ids alongside.

    Two parallel lists rather than a list of point objects: a check looks at a range of
    them by index, and building an object for each point in range (a frozen dataclass,
    each field set through `object.__setattr__`) was a large part of every check.
    """

    __slots__ = ("_ids", "_times")

    def __init__(self, points: list[tuple[datetime, str]] | None = None) -> None:
        if not points:  # most customers' ledgers: nothing counts yet
            self._times: list[datetime] = []
            self._ids: list[str] = []
            return
        ordered = sorted(points)  # by time, then id
        self._times = [at for at, _ in ordered]
        self._ids = [id_ for _, id_ in ordered]

    def add(self, at: datetime, id_: str) -> None:
        i = bisect.bisect_right(self._times, at)
        self._times.insert(i, at)
        self._ids.insert(i, id_)

    def span(self, lo: datetime, hi: datetime) -> tuple[int, int]:
        """The index range of the points with lo <= at < hi."""
        return bisect.bisect_left(self._times, lo), bisect.bisect_left(self._times, hi)

    def __len__(self) -> int:
        return len(self._times)


def check(limit: Limit, points: PointSet, t: datetime, tz: ZoneInfo) -> Blocked | None:
    """None if an email matching `limit` may go at `t`; else what blocks it."""
    times, ids = points._times, points._ids
    if limit.min_gap is not None:
        lo, hi = points.span(t - limit.min_gap + _TICK, t + limit.min_gap)
        if lo < hi:  # the latest of them is the last: times are sorted
            return Blocked(limit, times[hi - 1] + limit.min_gap, tuple(ids[lo:hi]))
    if limit.max is None:
        return None
    if limit.calendar is not None:
        start, end = calendar_period(t, limit.calendar, tz)
        lo, hi = points.span(start, end)
        if hi - lo >= limit.max:
            return Blocked(limit, end, tuple(ids[lo:hi]))
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
    lo, hi = points.span(t - per + _TICK, t + per)
    if hi - lo < most:
        return None
    # Insert t among the nearby points (at i) and look at every run of most+1 consecutive
    # points that contains it: each must span at least `per`. The first run that does not
    # tells where t may move to: just past its earliest other member + per. The run
    # starting at j holds t and the nearby points j .. j+most-1 (indices from lo).
    times, ids = points._times, points._ids
    i = bisect.bisect_right(times, t, lo, hi) - lo
    n = hi - lo
    for j in range(max(0, i - most), i + 1):
        if j + most > n:
            break
        a = lo + j
        first = times[a] if j < i else t
        last = times[a + most - 1] if j + most > i else t
        if last - first < per:
            return Blocked(limit, times[a] + per, tuple(ids[a : a + most]))
    return None


#: the name decisions give the cap a customer chose for themselves (`max_per_week`)
OWN_CAP = "customer-preference"
_WEEK = timedelta(days=7)


def own_cap(most: int) -> Limit:
    """The cap a customer chose: at most `most` emails in any 7 days, every role's, every
    category's; transactional mail and internal alerts neither count nor wait (as for every
    limit), and only email counts (they asked for fewer emails, not fewer calls)."""
    return Limit(
        name=OWN_CAP,
        location=Location("the customer's preferences", 1, 1),
        filter=Filter(channels=frozenset({"email"})),
        max=most,
        per=_WEEK,
    )


def own_cap_points(ledger: Iterable[Sent]) -> PointSet:
    """The emails of a customer's own ledger that their cap counts."""
    return PointSet(
        [
            (sent.at, sent.id)
            for sent in ledger
            if any(counts_against_limits(m) and m.channel == "email" for m in sent.members)
        ]
    )


def counts_against_limits(message: Message) -> bool:
    """Transactional mail and internal alerts to the owner never count against a limit."""
    return not message.transactional and message.to is None


def counts_for_account(message: Message, rules: Rules) -> bool:
    """Whether a limit of account scope counts this message: its customer's plan then
    depends on the rest of the account's mail."""
    if not counts_against_limits(message):
        return False
    return any(lim.scope is Scope.ACCOUNT for lim in rules.index.applicable(message).limits)


#: an email of the ledger: when it went, its id, and the `id()`s of the limits it counts
#: against
Counted = tuple[datetime, str, frozenset[int]]


def counting(ledger: Iterable[Sent], rules: Rules) -> list[Counted]:
    """The emails that count against some limit, with the `id()`s of those limits: worked
    out in one pass for every limit, not again for each limit's points."""
    applicable = rules.index.applicable
    out: list[Counted] = []
    for sent in ledger:
        members = [m for m in sent.members if counts_against_limits(m)]
        if len(members) == 1:
            limits = applicable(members[0]).limit_ids
        else:
            limits = frozenset().union(*(applicable(m).limit_ids for m in members))
        if limits:
            out.append((sent.at, sent.id, limits))
    return out


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
