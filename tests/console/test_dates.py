"""The Reports screen's date lists: Jalali for Persian users, Gregorian otherwise, and an
impossible pick refused by name rather than moved to a nearby day."""

from __future__ import annotations

from datetime import date, timedelta

import jdatetime
import pytest

from campaigner.console import dates
from campaigner.errors import CampaignerError


def _form(calendar: str, day: str, month: str, year: str) -> dict[str, str]:
    return {"calendar": calendar, "from_day": day, "from_month": month, "from_year": year}


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        (_form("jalali", "1", "1", "1404"), date(2025, 3, 21)),  # Nowruz 1404
        (_form("jalali", "۲۹", "۱۲", "۱۴۰۴"), date(2026, 3, 20)),  # Persian digits, as typed
        (_form("jalali", "30", "12", "1403"), date(2025, 3, 20)),  # 1403 is a leap year
        (_form("jalali", "31", "6", "1404"), date(2025, 9, 22)),
        (_form("gregorian", "29", "2", "2024"), date(2024, 2, 29)),
        (_form("gregorian", "20", "3", "2026"), date(2026, 3, 20)),
    ],
)
def test_a_pick_is_read_in_the_calendar_the_form_names(
    form: dict[str, str], expected: date
) -> None:
    assert dates.picked(form, "from", "fa") == expected


def test_a_form_without_the_lists_picks_nothing() -> None:
    assert dates.picked({"calendar": "jalali", "to_day": "1"}, "from", "fa") is None


@pytest.mark.parametrize(
    ("form", "language", "message"),
    [
        (
            _form("jalali", "30", "12", "1404"),
            "fa",
            "۳۰ اسفند ۱۴۰۴ وجود ندارد: سال ۱۴۰۴ کبیسه نیست و اسفند آن ۲۹ روز دارد.",
        ),
        (
            _form("jalali", "30", "12", "1404"),
            "en",
            "30 Esfand 1404 does not exist: 1404 is not a leap year, so Esfand has 29 days",
        ),
        (_form("jalali", "31", "7", "1404"), "fa", "۳۱ مهر ۱۴۰۴ وجود ندارد: مهر ۳۰ روز دارد."),
        (_form("jalali", "31", "7", "1403"), "en", "31 Mehr 1403 does not exist: Mehr has 30 days"),
        (
            _form("gregorian", "29", "2", "2025"),
            "en",
            "29 February 2025 does not exist: 2025 is not a leap year, so February has 28 days",
        ),
        (
            _form("gregorian", "31", "4", "2026"),
            "en",
            "31 April 2026 does not exist: April has 30 days",
        ),
        (_form("jalali", "0", "1", "1404"), "en", "0 Farvardin 1404 does not exist"),
        (_form("jalali", "1", "13", "1404"), "en", "month 13 does not exist"),
        (_form("jalali", "1", "1", "99999"), "en", "the year 99999 is out of range"),
        (_form("jalali", "1", "x", "1404"), "en", "must be numbers"),
        # Past 4,300 digits int() itself refuses: a 500 instead of a named refusal (review 1).
        (_form("jalali", "1", "1", "9" * 5000), "en", "at most 9 digits"),
        (_form("gregorian", "۹" * 4301, "1", "2026"), "en", "at most 9 digits"),
        (_form("julian", "1", "1", "1404"), "en", "expected jalali or gregorian"),
    ],
)
def test_an_impossible_pick_is_refused_by_name(
    form: dict[str, str], language: str, message: str
) -> None:
    with pytest.raises(CampaignerError) as refused:
        dates.picked(form, "from", language)
    assert message in str(refused.value)


@pytest.mark.parametrize("year", range(1395, 1412))
def test_jalali_month_lengths_agree_with_jdatetime(year: int) -> None:
    for month in range(1, 13):
        length = dates.month_length("jalali", year, month)
        jdatetime.date(year, month, length)  # exists
        with pytest.raises(ValueError):
            jdatetime.date(year, month, length + 1)


@pytest.mark.parametrize("language", ["fa", "en"])
def test_every_day_shown_in_the_lists_is_read_back_as_itself(language: str) -> None:
    """What the lists select for a date, sent back as the form sends it, is that date: over
    three years, both kinds of year end (Esfand 29 and 30, Feb 28 and 29) included."""
    today = date(2026, 3, 20)
    day = date(2024, 1, 1)
    while day < date(2027, 1, 1):
        shown = dates.picker("from", day, today, language)
        form = {"calendar": shown.calendar}
        for part, options in zip(dates.PARTS, (shown.days, shown.months, shown.years), strict=True):
            (chosen,) = [option for option in options if option.selected]
            form[f"from_{part}"] = str(chosen.value)
        assert dates.picked(form, "from", language) == day
        day += timedelta(days=1)


def test_a_persian_user_picks_in_jalali_with_persian_digits_and_month_names() -> None:
    shown = dates.picker("to", date(2026, 3, 20), date(2026, 3, 20), "fa")
    assert shown.calendar == "jalali"
    assert (shown.months[0].label, shown.months[-1].label) == ("فروردین", "اسفند")
    assert [(o.label, o.value) for o in shown.days if o.selected] == [("۲۹", 29)]
    assert [(o.label, o.value) for o in shown.months if o.selected] == [("اسفند", 12)]
    assert [(o.label, o.value) for o in shown.years if o.selected] == [("۱۴۰۴", 1404)]
    assert [o.value for o in shown.years] == list(range(1405, 1393, -1))


def test_an_english_user_picks_in_gregorian() -> None:
    shown = dates.picker("from", date(2026, 2, 19), date(2026, 3, 20), "en")
    assert shown.calendar == "gregorian"
    assert [(o.label, o.value) for o in shown.months if o.selected] == [("February", 2)]
    assert [o.label for o in shown.days if o.selected] == ["19"]
    assert [o.value for o in shown.years] == list(range(2027, 2015, -1))


def test_a_year_outside_the_usual_lists_is_still_offered_when_it_is_the_period() -> None:
    shown = dates.picker("from", date(2001, 5, 1), date(2026, 3, 20), "en")
    assert shown.years[-1].value == 2001 and shown.years[-1].selected
