"""When a calendar occasion falls: Nowruz, Yalda, Christmas, Black Friday, Eid.

A rule names its occasion as text (`jalali:01-01`, `gregorian:11-fri-4`, `hijri:10-01`,
`2027-03-20`); this module reads that text once and answers "which Gregorian days in this
span are the occasion". Lunar Hijri dates come from the Umm al-Qura tables (hijridate); the
official calendar of a country may differ from them by a day, so a shop corrects single
years in `[occasions.overrides]`, and a correction that moves a date by more than
`MAX_OVERRIDE_SHIFT` is refused as a typo.
"""

from __future__ import annotations

import re
from calendar import monthrange
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import jdatetime
from hijridate import Gregorian, Hijri

from campaigner.customers.phones import to_ascii_digits

Kind = Literal["gregorian", "jalali", "hijri", "weekday", "once"]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LAST = -1
MAX_OVERRIDE_SHIFT = timedelta(days=3)
# Days in each month at most, in each calendar (Esfand 30 and Feb 29 only in leap years).
_MONTH_DAYS = {
    "gregorian": (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31),
    "jalali": (31, 31, 31, 31, 31, 31, 30, 30, 30, 30, 30, 30),
    "hijri": (30,) * 12,
}
_MONTH_DAY = re.compile(r"^(gregorian|jalali|hijri):(\d{1,2})-(\d{1,2})$")
_WEEKDAY = re.compile(r"^gregorian:(\d{1,2})-([a-z]{3})-(\d|last)$")
_ONCE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
FORMS = (
    '"jalali:MM-DD", "gregorian:MM-DD", "hijri:MM-DD", "gregorian:MM-fri-4" '
    '(or -last), or a single day "YYYY-MM-DD"'
)


@dataclass(frozen=True)
class OccasionDate:
    """A parsed occasion date; `key` is its normalised spelling (`jalali:01-01`)."""

    kind: Kind
    month: int = 0
    day: int = 0
    weekday: int = 0
    nth: int = 0
    once: date | None = None

    @property
    def key(self) -> str:
        if self.once is not None:
            return self.once.isoformat()
        if self.kind == "weekday":
            nth = "last" if self.nth == LAST else str(self.nth)
            return f"gregorian:{self.month:02d}-{WEEKDAYS[self.weekday]}-{nth}"
        return f"{self.kind}:{self.month:02d}-{self.day:02d}"

    @property
    def recurring(self) -> bool:
        return self.once is None

    def between(
        self, first: date, last: date, overrides: Mapping[int, date] | None = None
    ) -> list[date]:
        """The Gregorian days in [first, last] on which the occasion falls, corrected by
        `overrides` (Gregorian year -> the official day that year)."""
        days = _computed(self, first.year - 1, last.year + 1)
        for year, official in sorted((overrides or {}).items()):
            nearest = _nearest(days, year, official)
            if nearest is not None:
                days[days.index(nearest)] = official
        return sorted(day for day in days if first <= day <= last)


def upcoming(spec: OccasionDate, today: date, overrides: Mapping[int, date] | None = None) -> str:
    """When the occasion comes next, for `rules check`: a one-off day long gone says so."""
    found = spec.between(today, today + timedelta(days=800), overrides)
    if not found:
        return f"{spec.key} has passed"
    jalali = jdatetime.date.fromgregorian(date=found[0])
    return f"next {found[0].isoformat()} (Jalali {jalali.year}/{jalali.month:02d}/{jalali.day:02d})"


def parse_occasion_date(text: str) -> OccasionDate:
    """The occasion a rule's `date` names; ValueError says which forms there are."""
    value = to_ascii_digits(text).strip().lower()
    if match := _ONCE.match(value):
        try:
            return OccasionDate("once", once=date(*(int(part) for part in match.groups())))
        except ValueError as exc:
            raise ValueError(f"bad date {text!r}: {exc}") from None
    if match := _WEEKDAY.match(value):
        month, weekday, nth = int(match.group(1)), match.group(2), match.group(3)
        if not 1 <= month <= 12:
            raise ValueError(f"bad month in {text!r}: months are 01 to 12")
        if weekday not in WEEKDAYS:
            raise ValueError(f"bad weekday in {text!r}: one of {', '.join(WEEKDAYS)}")
        count = LAST if nth == "last" else int(nth)
        if not (count == LAST or 1 <= count <= 4):
            raise ValueError(f"bad week in {text!r}: 1 to 4, or last")
        return OccasionDate("weekday", month=month, weekday=WEEKDAYS.index(weekday), nth=count)
    if match := _MONTH_DAY.match(value):
        kind, month, day = match.group(1), int(match.group(2)), int(match.group(3))
        if not 1 <= month <= 12:
            raise ValueError(f"bad month in {text!r}: months are 01 to 12")
        longest = _MONTH_DAYS[kind][month - 1]
        if not 1 <= day <= longest:
            raise ValueError(f"bad day in {text!r}: month {month:02d} has at most {longest} days")
        return OccasionDate(kind, month=month, day=day)  # type: ignore[arg-type]
    raise ValueError(f"bad occasion date {text!r}: expected {FORMS}")


def check_overrides(spec: OccasionDate, overrides: Mapping[int, date]) -> None:
    """Each correction must move one computed day of that Gregorian year by at most
    `MAX_OVERRIDE_SHIFT`: anything further is a typo, not a calendar difference."""
    if not spec.recurring:
        raise ValueError(f"{spec.key} is a single day already; overrides are for yearly dates")
    for year, official in sorted(overrides.items()):
        days = _computed(spec, year - 1, year + 1)
        if _nearest(days, year, official) is None:
            computed = ", ".join(d.isoformat() for d in days if d.year == year) or "none"
            raise ValueError(
                f"{year} = {official.isoformat()}: not within {MAX_OVERRIDE_SHIFT.days} days of "
                f"the computed {spec.key} of {year} ({computed})"
            )


def _nearest(days: list[date], year: int, official: date) -> date | None:
    close = [day for day in days if day.year == year and abs(day - official) <= MAX_OVERRIDE_SHIFT]
    return min(close, key=lambda day: abs(day - official)) if close else None


def _computed(spec: OccasionDate, first_year: int, last_year: int) -> list[date]:
    """The occasion's days from Gregorian year `first_year` to `last_year`, as computed."""
    if spec.once is not None:
        return [spec.once]
    days: list[date] = []
    for year in range(first_year, last_year + 1):
        if spec.kind == "gregorian":
            days.append(date(year, spec.month, min(spec.day, monthrange(year, spec.month)[1])))
        elif spec.kind == "weekday":
            days.append(_nth_weekday(year, spec.month, spec.weekday, spec.nth))
        elif spec.kind == "jalali":
            days.append(_jalali(year - 621, spec.month, spec.day))
        else:
            days.extend(_hijri_in(year, spec.month, spec.day))
    return sorted(set(days))


def _nth_weekday(year: int, month: int, weekday: int, nth: int) -> date:
    if nth == LAST:
        last = date(year, month, monthrange(year, month)[1])
        return last - timedelta(days=(last.weekday() - weekday) % 7)
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (nth - 1))


def _jalali(year: int, month: int, day: int) -> date:
    """Esfand 30 is kept on Esfand 29 in common years, as birthdays are."""
    if month == 12 and day == 30 and not jdatetime.date(year, 1, 1).isleap():
        day = 29
    result: date = jdatetime.date(year, month, day).togregorian()
    return result


def _hijri_in(year: int, month: int, day: int) -> list[date]:
    """The Hijri month-day's days in Gregorian `year` (two in some years, none outside the
    Umm al-Qura tables, 1343-1500 AH); a 30th in a 29-day month is kept on the 29th."""
    try:
        first = Gregorian(year, 1, 1).to_hijri().year
        last = Gregorian(year, 12, 31).to_hijri().year
    except OverflowError:
        return []
    days = []
    for hijri_year in range(first, last + 1):
        try:
            hijri = Hijri(hijri_year, month, day)
        except ValueError:
            hijri = Hijri(hijri_year, month, day - 1)
        except OverflowError:
            continue
        gregorian = hijri.to_gregorian()
        found = date(gregorian.year, gregorian.month, gregorian.day)
        if found.year == year:
            days.append(found)
    return days
