"""The Reports screen's date picker: a day, a month and a year list in the Jalali calendar
for a Persian user and in the Gregorian one otherwise.

Three `<select>`s need no script, so the strict Content-Security-Policy stands; but they
cannot hide the 31st when Mehr is chosen, so the server names an impossible pick (31 Mehr,
30 Esfand of a common year) instead of quietly moving it to a nearby day.
"""

from __future__ import annotations

import calendar as gregorian_calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import jdatetime

from campaigner.calendars import to_jalali
from campaigner.customers.phones import to_ascii_digits
from campaigner.errors import CampaignerError
from campaigner.messages.filters import GREGORIAN_MONTHS, fa_digits

YEARS_BACK = 10  # the report covers at most ten years
PARTS = ("day", "month", "year")
MAX_DIGITS = 9  # far past any real pick; int() itself fails past 4,300 digits


@dataclass(frozen=True)
class Option:
    value: int
    label: str
    selected: bool


@dataclass(frozen=True)
class Picker:
    """One date's three lists, named `<field>_day`, `<field>_month` and `<field>_year`."""

    field: str
    calendar: str
    days: list[Option]
    months: list[Option]
    years: list[Option]


def calendar_for(language: str) -> str:
    return "jalali" if language == "fa" else "gregorian"


def picker(field: str, value: date, today: date, language: str) -> Picker:
    """The lists for `field`, with `value` chosen; years from ten before today's to the next."""
    calendar = calendar_for(language)
    year, month, day = _parts(value, calendar)
    this_year = _parts(today, calendar)[0]
    years = range(min(year, this_year - YEARS_BACK), max(year, this_year + 1) + 1)

    def label(number: int) -> str:
        return fa_digits(number) if language == "fa" else str(number)

    names = _month_names(calendar, language)
    return Picker(
        field,
        calendar,
        [Option(n, label(n), n == day) for n in range(1, 32)],
        [Option(n, names[n - 1], n == month) for n in range(1, 13)],
        [Option(n, label(n), n == year) for n in reversed(years)],
    )


def picked(form: Mapping[str, str], field: str, language: str) -> date | None:
    """The Gregorian date chosen in `field`'s lists, in the calendar the form names; None
    when the form has no such lists."""
    texts = [to_ascii_digits(form.get(f"{field}_{part}", "")).strip() for part in PARTS]
    if not any(texts):
        return None
    calendar = form.get("calendar", "")
    if calendar not in ("jalali", "gregorian"):
        raise CampaignerError(f"calendar {calendar!r}: expected jalali or gregorian")
    if not all(text.isascii() and text.isdigit() for text in texts):
        raise CampaignerError(f"{field}: the day, month and year must be numbers")
    if any(len(text) > MAX_DIGITS for text in texts):
        raise CampaignerError(
            f"{field}: the day, month and year must be numbers of at most {MAX_DIGITS} digits"
        )
    day, month, year = (int(text) for text in texts)
    if not 1 <= month <= 12:
        raise CampaignerError(f"{field}: month {month} does not exist")
    if not 1000 <= year <= 3000:
        raise CampaignerError(f"{field}: the year {year} is out of range")
    length = month_length(calendar, year, month)
    if not 1 <= day <= length:
        raise CampaignerError(_impossible(calendar, language, year, month, day, length))
    if calendar == "gregorian":
        return date(year, month, day)
    gregorian: date = jdatetime.date(year, month, day).togregorian()
    return gregorian


def month_length(calendar: str, year: int, month: int) -> int:
    """Days in the month: the Jalali year has six months of 31, five of 30, then Esfand
    with 30 in a leap year and 29 otherwise."""
    if calendar == "jalali":
        if month <= 6:
            return 31
        if month <= 11:
            return 30
        return 30 if jdatetime.date(year, 1, 1).isleap() else 29
    return gregorian_calendar.monthrange(year, month)[1]


def _impossible(calendar: str, language: str, year: int, month: int, day: int, length: int) -> str:
    """Why the day does not exist, in the user's language: the month's length, and for the
    month that is shorter in common years, that this year is one."""
    name = _month_names(calendar, language)[month - 1]
    longest = (12, 30) if calendar == "jalali" else (2, 29)  # the month a common year shortens
    common = (month, length + 1) == longest
    if language == "fa":
        shown = fa_digits(f"{day} {name} {year}")
        if common:
            return fa_digits(
                f"{shown} وجود ندارد: سال {year} کبیسه نیست و {name} آن {length} روز دارد."
            )
        return fa_digits(f"{shown} وجود ندارد: {name} {length} روز دارد.")
    if common:
        return (
            f"{day} {name} {year} does not exist: {year} is not a leap year, "
            f"so {name} has {length} days"
        )
    return f"{day} {name} {year} does not exist: {name} has {length} days"


def _parts(value: date, calendar: str) -> tuple[int, int, int]:
    if calendar == "jalali":
        jalali = to_jalali(value)
        return jalali.year, jalali.month, jalali.day
    return value.year, value.month, value.day


def _month_names(calendar: str, language: str) -> list[str]:
    if calendar == "jalali":
        return jdatetime.date.j_months_fa if language == "fa" else jdatetime.date.j_months_en
    return GREGORIAN_MONTHS
