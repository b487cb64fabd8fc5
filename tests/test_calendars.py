from datetime import date, timedelta

import pytest

from campaigner.calendars import (
    birthday_in_year,
    jalali_date,
    jalali_month_day,
    jalali_weekday,
    month_day,
    parse_date,
)


def test_parse_gregorian_and_jalali() -> None:
    assert parse_date("1990-02-28") == date(1990, 2, 28)
    assert parse_date("1370/01/01") == date(1991, 3, 21)
    assert parse_date("۱۳۷۰/۰۱/۰۱") == date(1991, 3, 21)


@pytest.mark.parametrize("bad", ["1990-02-30", "yesterday", "1370/13/01", ""])
def test_parse_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_date(bad)


def test_month_days() -> None:
    assert month_day(date(1991, 3, 21)) == 321
    assert jalali_month_day(date(1991, 3, 21)) == 101


def test_feb_29_in_common_year() -> None:
    assert birthday_in_year(date(2000, 2, 29), 2025, "gregorian") == date(2025, 2, 28)
    assert birthday_in_year(date(2000, 2, 29), 2028, "gregorian") == date(2028, 2, 29)


def test_esfand_30_in_common_jalali_year() -> None:
    born = parse_date("1399/12/30")
    assert birthday_in_year(born, 1403, "jalali") == date(2025, 3, 20)  # 1403 is leap: Esfand 30
    assert birthday_in_year(born, 1404, "jalali") == date(2026, 3, 20)  # Esfand 29 1404


def test_nowruz_moves_between_20_and_21_march() -> None:
    born = parse_date("1370/01/01")
    assert birthday_in_year(born, 1403, "jalali") == date(2024, 3, 20)
    assert birthday_in_year(born, 1405, "jalali") == date(2026, 3, 21)


def test_jalali_dates_agree_with_jdatetime_on_every_day() -> None:
    """Every day from 1900 to 2100, leap years of both calendars included."""
    import jdatetime

    day, last = date(1900, 1, 1), date(2100, 12, 31)
    while day <= last:
        expected = jdatetime.date.fromgregorian(date=day)
        assert jalali_month_day(day) == expected.month * 100 + expected.day, day
        assert jalali_date(day) == (expected.year, expected.month, expected.day), day
        assert jalali_weekday(day) == expected.weekday(), day
        day += timedelta(days=1)


@pytest.mark.parametrize("day", [date(1, 1, 1), date(621, 6, 1), date(9999, 12, 31)])
def test_jalali_month_day_out_of_range_fails_like_jdatetime(day: date) -> None:
    import jdatetime

    with pytest.raises(ValueError):
        jdatetime.date.fromgregorian(date=day)
    with pytest.raises(ValueError):
        jalali_month_day(day)
