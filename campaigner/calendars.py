"""Gregorian and Jalali (Solar Hijri) dates, for birthdays and templates."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from functools import lru_cache

import jdatetime

from campaigner.customers.phones import to_ascii_digits

CALENDARS = ("gregorian", "jalali")
_DATE = re.compile(r"^\s*(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\s*$")


def to_jalali(day: date) -> jdatetime.date:
    return jdatetime.date.fromgregorian(date=day)


def month_day(day: date) -> int:
    return day.month * 100 + day.day


def jalali_month_day(day: date) -> int:
    """The Jalali month and day as MMDD."""
    _, month, dom = jalali_date(day)
    return month * 100 + dom


def jalali_date(day: date) -> tuple[int, int, int]:
    """The Jalali year, month and day, counted from the year's Nowruz.

    jdatetime reads the process locale on every conversion, a seventh of a large CSV import
    and a third of rendering a Persian text with a date; only Nowruz needs it (once per
    year), the rest is the fixed month lengths: six of 31 days, five of 30, then Esfand.
    Out-of-range years fail as jdatetime fails, with ValueError.
    """
    year = day.year - 622 if (day.month, day.day) < (3, 19) else day.year - 621
    start = _nowruz(year)
    if day < start:
        year -= 1
        start = _nowruz(year)
    offset = (day - start).days
    if offset < 186:
        return year, offset // 31 + 1, offset % 31 + 1
    offset -= 186
    return year, offset // 30 + 7, offset % 30 + 1


def jalali_weekday(day: date) -> int:
    """The day of the week as jdatetime counts it: 0 is Saturday."""
    return (day.weekday() + 2) % 7


@lru_cache(maxsize=4096)
def _nowruz(jalali_year: int) -> date:
    """The Gregorian date of 1 Farvardin of `jalali_year`."""
    first: date = jdatetime.date(jalali_year, 1, 1).togregorian()
    return first


def parse_date(text: str) -> date:
    """Parse YYYY-MM-DD or YYYY/MM/DD; years before 1700 are read as Jalali (e.g. 1370/01/01).

    Persian and Arabic-Indic digits are accepted.
    """
    match = _DATE.match(to_ascii_digits(text))
    if not match:
        raise ValueError(
            f"bad date {text!r}: expected YYYY-MM-DD (Gregorian) or YYYY/MM/DD (Jalali)"
        )
    year, month, day = (int(part) for part in match.groups())
    try:
        if year < 1700:
            return _from_jalali(year, month, day)
        return date(year, month, day)
    except ValueError as exc:
        raise ValueError(f"bad date {text!r}: {exc}") from None


@lru_cache(maxsize=65536)
def _from_jalali(year: int, month: int, day: int) -> date:
    """Cached: jdatetime reads the process locale on every date it makes, and a customer
    list repeats the same few tens of thousands of birthdays."""
    gregorian: date = jdatetime.date(year, month, day).togregorian()
    return gregorian


def birthday_in_year(birthday: date, year: int, calendar: str) -> date:
    """The Gregorian date of the birthday in the given year *of that calendar*.

    Feb 29 falls back to Feb 28 in common years; Esfand 30 to Esfand 29 in common Jalali years.
    """
    if calendar == "jalali":
        born = to_jalali(birthday)
        day = born.day
        if born.month == 12 and day == 30 and not jdatetime.date(year, 1, 1).isleap():
            day = 29
        return jdatetime.date(year, born.month, day).togregorian()
    day = birthday.day
    if birthday.month == 2 and day == 29 and not _gregorian_leap(year):
        day = 28
    return date(year, birthday.month, day)


def celebrated_on(day: date, calendar: str, years: Iterable[int]) -> tuple[int, list[date]]:
    """The year of `day` in `calendar`, and the dates `years` earlier whose anniversary
    (`birthday_in_year`) falls on `day`: Esfand 30 and Feb 29 are celebrated on the last day
    of the month in common years, so they are among those of Esfand 29 and Feb 28."""
    year = year_of(day, calendar)
    if calendar == "jalali":
        jday = to_jalali(day)
        month_days = [(jday.month, jday.day)] + ([(12, 30)] if jday.month == 12 else [])
    else:
        month_days = [(day.month, day.day)] + ([(2, 29)] if day.month == 2 else [])
    found = []
    for back in sorted(set(years)):
        for month, day_of_month in month_days:
            try:
                if calendar == "jalali":
                    original = jdatetime.date(year - back, month, day_of_month).togregorian()
                else:
                    original = date(year - back, month, day_of_month)
            except ValueError:
                continue
            if birthday_in_year(original, year, calendar) == day and original not in found:
                found.append(original)
    return year, found


def year_of(day: date, calendar: str) -> int:
    return to_jalali(day).year if calendar == "jalali" else day.year


def _gregorian_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
