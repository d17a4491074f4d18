"""Days a send window stays shut: blackout dates written in the rules, and public holidays from
the `holidays` package (its calendars are kept up to date there, not copied here).

Parsing happens once, when the rules load; a holiday calendar is worked out once per
(country, year) and kept, since every customer of a country asks about the same days.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from functools import lru_cache
from types import MappingProxyType

import holidays as holiday_calendars

from cadence.rules.errors import suggest

#: `holidays: customer`: the country in the customer's `attributes.country`
CUSTOMER = "customer"

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EXAMPLE = 'write a date like "2026-12-24" or a range like "2026-12-24..2026-12-26"'

DateRange = tuple[date, date]  # first and last day, both shut


def _day(text: str) -> date:
    if not _DATE.match(text):
        raise ValueError(f"`{text}` is not a date: {_EXAMPLE}")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"`{text}` is not a day of the calendar: {_EXAMPLE}") from None


def parse_blackout(text: str) -> DateRange:
    """`2027-01-01` (one day) or `2026-12-24..2026-12-26` (both ends included)."""
    text = text.strip()
    first, sep, last = text.partition("..")
    if not sep:
        day = _day(text)
        return day, day
    start, end = _day(first.strip()), _day(last.strip())
    if end < start:
        raise ValueError(f"`{text}` ends before it starts; did you mean `{end}..{start}`?")
    return start, end


def describe_range(span: DateRange) -> str:
    first, last = span
    return str(first) if first == last else f"{first}..{last}"


@lru_cache(maxsize=1)
def _supported() -> Mapping[str, frozenset[str]]:
    """Every country code the package knows (ISO 3166 alpha-2 and alpha-3, and aliases
    such as UK), each with its subdivisions."""
    found = holiday_calendars.list_supported_countries()
    return MappingProxyType({code: frozenset(subs) for code, subs in found.items()})


def check_country(text: str) -> str:
    """A holiday calendar's code as written in the rules: `US`, `DE`, or a subdivision like
    `DE-BY`, upper-cased; a ValueError with a suggestion for one the package does not know."""
    code = text.strip().upper()
    country, sep, sub = code.partition("-")
    supported = _supported()
    if country not in supported:
        hint = suggest(text.strip().lower(), [CUSTOMER]) or suggest(country, supported)
        raise ValueError(
            f"`{text}` is not a country code the holiday calendars know (write an ISO code "
            f"like US, GB or DE, or `customer` for the customer's attributes.country){hint}"
        )
    if sep and sub not in supported[country]:
        subs = sorted(supported[country])
        listed = ", ".join(subs[:12]) + (", ..." if len(subs) > 12 else "")
        allowed = f"its subdivisions: {listed}" if subs else "it has no subdivisions"
        raise ValueError(f"`{text}`: {country} has no subdivision `{sub}`; {allowed}")
    return code


def country_of(value: object) -> str | None:
    """The calendar of a customer's `attributes.country`, or None when it is missing or one
    the package does not know (then no holidays apply to that customer)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return check_country(value)
    except ValueError:
        return None


@lru_cache(maxsize=2048)
def holidays_in(code: str, year: int) -> Mapping[date, str]:
    """The public holidays of one calendar (`US`, `DE-BY`) in one year, by date, each with
    its name; worked out once and kept."""
    country, _, sub = code.partition("-")
    found = holiday_calendars.country_holidays(country, subdiv=sub or None, years=year)
    return MappingProxyType({day: name for day, name in found.items() if day.year == year})


def holiday_on(code: str, day: date) -> str | None:
    """The holiday's name when `day` is one in this calendar, else None."""
    return holidays_in(code, day.year).get(day)


Problem = tuple[tuple[str | int, ...], str]  # where in the window (a key, an index), and what


def read_closures(
    blackouts: Sequence[str] | None, holidays: str | None
) -> tuple[tuple[DateRange, ...], str | None, list[Problem]]:
    """A send window's `blackouts` and `holidays` as written, parsed; every problem with
    the key (and list index) it is at, for the loader to point at."""
    spans: list[DateRange] = []
    problems: list[Problem] = []
    for i, text in enumerate(blackouts or ()):
        try:
            spans.append(parse_blackout(text))
        except ValueError as exc:
            problems.append((("blackouts", i), str(exc)))
    calendar = None
    if holidays is not None:
        try:
            calendar = CUSTOMER if holidays.strip().lower() == CUSTOMER else check_country(holidays)
        except ValueError as exc:
            problems.append((("holidays",), str(exc)))
    return tuple(spans), calendar, problems
