"""Blackout dates and public holidays on send windows: read from rule files with every mistake
at FILE:LINE:COL, and applied by the planner in the customer's own time zone."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from cadence.engine import plan_customer
from cadence.engine.holds import next_look
from cadence.engine.windows import next_open, zone
from cadence.model import Message, Status
from cadence.rules import RuleErrors, load_rules
from cadence.rules.calendars import holidays_in, parse_blackout

from .engine_helpers import WEEKDAYS, categories, context, customer, merge, rules, window

NY = zone("America/New_York")
BERLIN = zone("Europe/Berlin")
# Thursday 24 December 2026, 10:00 in New York
XMAS_EVE = datetime(2026, 12, 24, 15, 0, tzinfo=UTC)
XMAS = ((date(2026, 12, 24), date(2026, 12, 26)),)


def _errors(folder: Path, text: str) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "w.yaml").write_text(text)
    with pytest.raises(RuleErrors) as info:
        load_rules(folder)
    return [str(e).removeprefix(f"{folder}/") for e in info.value.errors]


def test_blackouts_and_holidays_load(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text(
        "send_windows:\n"
        "  - days: mon-fri\n"
        '    hours: "09:00-17:00"\n'
        '    blackouts: ["2026-12-24..2026-12-26", 2027-01-01]\n'
        "    holidays: us\n"
        "  - roles: [sales]\n"
        "    holidays: customer\n"
        "  - roles: [support]\n"
        "    holidays: DE-BY\n"
    )
    loaded = load_rules(tmp_path)
    first, second, third = loaded.send_windows
    assert first.blackouts == (XMAS[0], (date(2027, 1, 1), date(2027, 1, 1)))
    assert first.holidays == "US"
    assert second.holidays == "customer" and second.blackouts == ()
    assert third.holidays == "DE-BY"


def test_bad_dates_and_countries_are_errors_at_their_place(tmp_path: Path) -> None:
    errors = _errors(
        tmp_path,
        "send_windows:\n"
        "  - days: mon-fri\n"
        '    blackouts: ["2026-02-30", "2026-12-26..2026-12-24", "24/12/2026"]\n'
        "    holidays: XX\n"
        "  - holidays: custmer\n"
        "  - holidays: DE-QQ\n",
    )
    assert errors == [
        "w.yaml:3:17: `2026-02-30` is not a day of the calendar: write a date like "
        '"2026-12-24" or a range like "2026-12-24..2026-12-26"',
        "w.yaml:3:31: `2026-12-26..2026-12-24` ends before it starts; did you mean "
        "`2026-12-24..2026-12-26`?",
        'w.yaml:3:57: `24/12/2026` is not a date: write a date like "2026-12-24" or a range '
        'like "2026-12-24..2026-12-26"',
        "w.yaml:4:15: `XX` is not a country code the holiday calendars know (write an ISO "
        "code like US, GB or DE, or `customer` for the customer's attributes.country)",
        "w.yaml:5:15: `custmer` is not a country code the holiday calendars know (write an "
        "ISO code like US, GB or DE, or `customer` for the customer's attributes.country); "
        "did you mean `customer`?",
        "w.yaml:6:15: `DE-QQ`: DE has no subdivision `QQ`; its subdivisions: Augsburg, BB, "
        "BE, BW, BY, HB, HE, HH, MV, NI, NW, RP, ...",
    ]


def test_a_range_includes_both_ends() -> None:
    assert parse_blackout(" 2026-12-24 .. 2026-12-26 ") == XMAS[0]
    assert parse_blackout("2027-01-01") == (date(2027, 1, 1), date(2027, 1, 1))


def test_a_holiday_calendar_is_worked_out_once_per_country_and_year() -> None:
    holidays_in.cache_clear()
    for _ in range(3):
        assert date(2026, 11, 26) in holidays_in("US", 2026)
    assert holidays_in.cache_info().misses == 1
    assert date(2027, 11, 25) in holidays_in("US", 2027)  # Thanksgiving moves
    assert holidays_in.cache_info().misses == 2


# -- the planner ---------------------------------------------------------------------------


def _msg(mid: str, at: datetime, **kw: object) -> Message:
    return Message(
        id=mid,
        customer_id="c-17",
        role=str(kw.pop("role", "marketing")),
        category=str(kw.pop("category", "tip")),
        subject=f"subject {mid}",
        body_text="body",
        send_after=at,
        **kw,  # type: ignore[arg-type]
    )


WORKING = window(WEEKDAYS, "09:00", "17:00")


def test_a_message_in_a_blackout_goes_at_the_next_opening_and_says_why() -> None:
    r = rules(send_windows=(replace(WORKING, blackouts=XMAS, name="working-hours"),))
    plan = plan_customer(context(_msg("m1", XMAS_EVE)), r, XMAS_EVE)
    (d,) = plan.decisions
    # Monday 28 December, 09:00 in New York
    assert d.status is Status.SCHEDULED
    assert d.send_at == datetime(2026, 12, 28, 14, 0, tzinfo=UTC)
    assert d.reason == (
        "goes Mon 28 Dec 09:00 EST, when its send window working-hours "
        "(mon,tue,wed,thu,fri 09:00-17:00) opens; held past 2026-12-24..2026-12-26 (a blackout)"
    )


def test_transactional_mail_goes_on_a_blackout_day() -> None:
    r = rules(send_windows=(replace(WORKING, blackouts=XMAS, holidays="US"),))
    receipt = _msg("r1", XMAS_EVE, role="billing", category="receipt", transactional=True)
    plan = plan_customer(context(receipt), r, XMAS_EVE)
    assert plan.emails[0].send_at == XMAS_EVE


def test_a_country_holiday_holds_mail_to_the_next_working_day() -> None:
    r = rules(send_windows=(replace(WORKING, holidays="US"),))
    thanksgiving = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
    plan = plan_customer(context(_msg("m1", thanksgiving)), r, thanksgiving)
    (d,) = plan.decisions
    assert d.send_at == datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
    assert d.reason.endswith("opens; held past 2026-11-26 (Thanksgiving Day, a US holiday)")


def test_customer_holidays_follow_each_customers_country() -> None:
    r = rules(
        send_windows=(replace(window(frozenset(range(7)), "09:00", "17:00"), holidays="customer"),)
    )
    # Saturday 26 December, 10:00 in Berlin: Second Day of Christmas there, not in the US
    at = datetime(2026, 12, 26, 9, 0, tzinfo=UTC)
    german = customer(tz="Europe/Berlin", country="DE")
    american = customer(tz="Europe/Berlin", country="us")  # an American living in Berlin
    unknown = customer(tz="Europe/Berlin", country="Atlantis")
    nowhere = customer(tz="Europe/Berlin")
    send_at = {
        who: plan_customer(context(_msg("m1", at), customer_=c), r, at).decisions[0].send_at
        for who, c in [("de", german), ("us", american), ("?", unknown), ("-", nowhere)]
    }
    assert send_at["de"] == datetime(2026, 12, 27, 8, 0, tzinfo=UTC)  # Sunday 09:00
    assert send_at["us"] == send_at["?"] == send_at["-"] == at


def test_an_overnight_window_stops_at_midnight_before_a_shut_day() -> None:
    night = replace(window(frozenset(range(7)), "22:00", "02:00"), blackouts=XMAS)
    # Wednesday 23 December, 23:30 in New York: the window is open until midnight only
    late = datetime(2026, 12, 24, 4, 30, tzinfo=UTC)
    assert next_open(late, night, NY) == late
    after_midnight = datetime(2026, 12, 24, 5, 30, tzinfo=UTC)  # 00:30 on the 24th
    assert next_open(after_midnight, night, NY) == datetime(2026, 12, 28, 3, 0, tzinfo=UTC)


def test_a_long_blackout_is_waited_out() -> None:
    three_weeks = ((date(2026, 12, 20), date(2027, 1, 10)),)
    w = replace(WORKING, blackouts=three_weeks)
    opened = next_open(datetime(2026, 12, 18, 23, 0, tzinfo=UTC), w, NY)
    assert opened == datetime(2027, 1, 11, 14, 0, tzinfo=UTC)


def test_a_held_message_is_asked_again_after_the_blackout() -> None:
    w = replace(WORKING, blackouts=XMAS)
    # Wednesday 23 December, 10:00 in New York, inside the window
    at = datetime(2026, 12, 23, 15, 0, tzinfo=UTC)
    assert next_look(at, w, NY) == datetime(2026, 12, 28, 14, 0, tzinfo=UTC)


def test_a_fixed_time_digest_skips_a_holiday() -> None:
    r = rules(
        send_windows=(replace(WORKING, holidays="DE"),),
        merge=(merge("morning", categories("tip"), timedelta(hours=48), at=time(9, 0)),),
    )
    # Wednesday 30 December 2026 in Berlin: both tips wait for the 09:00 digest on
    # Thursday 31 December, and New Year's Day is a holiday
    at = datetime(2026, 12, 31, 10, 0, tzinfo=UTC)
    ctx = context(_msg("t1", at), _msg("t2", at), customer_=customer(tz="Europe/Berlin"))
    plan = plan_customer(ctx, r, at)
    (email,) = plan.emails
    assert email.send_at == datetime(2027, 1, 4, 8, 0, tzinfo=UTC)  # Monday 4 January 09:00


def test_the_pass_that_sends_it_still_says_what_it_waited_out() -> None:
    # planned again at the moment it goes: the shut days lie between its send_after and now
    r = rules(send_windows=(replace(WORKING, blackouts=XMAS),))
    monday = datetime(2026, 12, 28, 14, 0, tzinfo=UTC)
    (d,) = plan_customer(context(_msg("m1", XMAS_EVE)), r, monday).decisions
    assert d.send_at == monday
    assert d.reason == "goes Mon 28 Dec 09:00 EST; held past 2026-12-24..2026-12-26 (a blackout)"
    # Saturday the 26th is in the blackout, but the window is shut on Saturdays anyway
    (d,) = plan_customer(context(_msg("m2", monday - timedelta(days=2))), r, monday).decisions
    assert d.reason == "goes Mon 28 Dec 09:00 EST"
