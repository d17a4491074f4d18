"""Blackouts and holidays, hammered by Hypothesis across daylight-saving changes:

- no non-transactional email goes on a local date its window is shut (a blackout, a holiday of
  the window's calendar or of the customer's country), nor in an overnight session that began
  on one;
- the opening found is the earliest instant the window allows, read off the local clock by a
  reference written here (not the planner's code);
- transactional mail goes when it is ready, shut day or not.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cadence.engine import plan_customer
from cadence.engine.windows import next_open
from cadence.model import Message, Status
from cadence.rules.calendars import country_of, holiday_on
from cadence.rules.model import SendWindow

from .engine_helpers import context, customer, rules, window

ZONES = ["America/New_York", "Europe/Berlin", "Australia/Sydney", "UTC"]
# a few days before a clock change (New York: 8 March and 1 November 2026; Berlin: 29 March
# and 25 October 2026; Sydney: 5 April and 4 October 2026), and before Christmas
BASES = [
    datetime(2026, 3, 5, tzinfo=UTC),
    datetime(2026, 3, 26, tzinfo=UTC),
    datetime(2026, 4, 2, tzinfo=UTC),
    datetime(2026, 10, 1, tzinfo=UTC),
    datetime(2026, 10, 22, tzinfo=UTC),
    datetime(2026, 10, 29, tzinfo=UTC),
    datetime(2026, 12, 20, tzinfo=UTC),
]
# whole and half hours away from 01:00-04:00, where a clock change makes a local time happen
# twice or never (how a window meets that is test_engine's concern, not this one's)
CLOCKS = [time(h, m) for h in (0, *range(4, 24)) for m in (0, 30)]
STEP = timedelta(minutes=15)


@st.composite
def windows(draw: st.DrawFn, base: datetime) -> SendWindow:
    days = draw(st.frozensets(st.integers(0, 6), min_size=1))
    start, end = draw(st.sampled_from(CLOCKS)), draw(st.sampled_from(CLOCKS))
    spans = []
    for _ in range(draw(st.integers(0, 3))):
        first = base.date() + timedelta(days=draw(st.integers(-3, 20)))
        spans.append((first, first + timedelta(days=draw(st.integers(0, 10)))))
    holidays = draw(st.sampled_from([None, "US", "DE", "GB", "customer"]))
    w = window(days, start.isoformat("minutes"), end.isoformat("minutes"))
    return replace(w, blackouts=tuple(spans), holidays=holidays)


def _shut(w: SendWindow, day: date, country: str | None) -> bool:
    """A reference read of the rules: a blackout span holds the day, or the calendar (the
    window's own, or the customer's country for `customer`) names a holiday on it."""
    if any(first <= day <= last for first, last in w.blackouts):
        return True
    calendar = country if w.holidays == "customer" else w.holidays
    return calendar is not None and holiday_on(calendar, day) is not None


def _allowed(t: datetime, w: SendWindow, zone: ZoneInfo, country: str | None) -> bool:
    """Whether the window lets mail go at `t`, off the local clock: its hours on one of its
    days (an overnight window's early hours belong to the day it began), neither that day
    nor the date of `t` shut."""
    local = t.astimezone(zone)
    clock, today = local.time().replace(tzinfo=None), local.date()
    if w.start == w.end:  # from the start to midnight (00:00-24:00: the whole day)
        began, inside = today, clock >= w.start
    elif w.start < w.end:
        began, inside = today, w.start <= clock < w.end
    elif clock >= w.start:
        began, inside = today, True
    else:
        began, inside = today - timedelta(days=1), clock < w.end
    return (
        inside
        and began.weekday() in w.days
        and not _shut(w, began, country)
        and not _shut(w, today, country)
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.sampled_from(ZONES), st.sampled_from(BASES))
def test_the_opening_is_the_first_allowed_instant(
    data: st.DataObject, tz: str, base: datetime
) -> None:
    w = data.draw(windows(base))
    country = data.draw(st.sampled_from([None, "US", "DE", "GB"]))
    zone = ZoneInfo(tz)
    t = base + timedelta(minutes=data.draw(st.integers(0, 60 * 24 * 21)))
    opened = next_open(t, replace(w, holidays=country) if w.holidays == "customer" else w, zone)
    # shut days are finite spans: a window with days always opens again
    assert opened is not None and opened >= t
    assert _allowed(opened, w, zone, country)
    probe = t
    while probe < opened:  # nothing the window allows comes before it
        assert not _allowed(probe, w, zone, country), probe
        probe += STEP


def _message(i: int, at: datetime, transactional: bool) -> Message:
    return Message(
        id=f"m{i}",
        customer_id="c-17",
        role="billing" if transactional else "marketing",
        category="receipt" if transactional else "tip",
        subject=f"subject {i}",
        body_text="body",
        send_after=at,
        transactional=transactional,
        expires_at=at + timedelta(days=40),
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.sampled_from(ZONES), st.sampled_from(BASES))
def test_no_mail_on_a_shut_day_across_clock_changes(
    data: st.DataObject, tz: str, base: datetime
) -> None:
    w = data.draw(windows(base))
    written = data.draw(st.sampled_from([None, "US", "de", "GB", "Atlantis"]))
    cust = customer(tz=tz) if written is None else customer(tz=tz, country=written)
    country = country_of(written)
    pending = tuple(
        _message(
            i,
            base + timedelta(minutes=data.draw(st.integers(0, 60 * 24 * 14))),
            data.draw(st.booleans()) and data.draw(st.booleans()),
        )
        for i in range(data.draw(st.integers(1, 8)))
    )
    now = base
    plan = plan_customer(context(*pending, customer_=cust), rules(send_windows=(w,)), now)
    zone = ZoneInfo(tz)
    by_id = {m.id: m for m in pending}
    for email in plan.emails:
        members = [by_id[i] for i in email.members]
        if email.transactional:
            assert email.send_at == members[0].send_after  # ready now or later: never held
        else:
            assert _allowed(email.send_at, w, zone, country)
    for d in plan.decisions:
        assert d.status in (Status.SCHEDULED, Status.MERGED), d.reason
