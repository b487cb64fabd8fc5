"""Occasion dates: each written form, the calendars' leap days, Hijri with and without a
correction, and the corrections a shop may and may not make."""

from __future__ import annotations

from datetime import date

import pytest

from campaigner.config import Settings
from campaigner.occasions import check_overrides, parse_occasion_date


def days(text: str, year: int, overrides: dict[int, date] | None = None) -> list[date]:
    return parse_occasion_date(text).between(date(year, 1, 1), date(year, 12, 31), overrides)


def test_nowruz_falls_on_20_or_21_march_by_the_jalali_calendar() -> None:
    assert days("jalali:01-01", 2024) == [date(2024, 3, 20)]
    assert days("jalali:01-01", 2025) == [date(2025, 3, 21)]
    assert days("jalali:01-01", 2026) == [date(2026, 3, 21)]


def test_yalda_is_the_last_night_of_azar() -> None:
    assert days("jalali:09-30", 2026) == [date(2026, 12, 21)]
    assert days("jalali:9-30", 2025) == [date(2025, 12, 21)]


def test_black_friday_as_fourth_and_as_last_friday_of_november() -> None:
    assert days("gregorian:11-fri-4", 2026) == [date(2026, 11, 27)]
    assert days("gregorian:11-fri-last", 2026) == [date(2026, 11, 27)]
    # November 2024 began on a Friday: its fourth Friday is the 22nd, its last the 29th
    # (the US Black Friday, the day after the fourth Thursday).
    assert days("gregorian:11-fri-4", 2024) == [date(2024, 11, 22)]
    assert days("gregorian:11-fri-last", 2024) == [date(2024, 11, 29)]
    # May 2026 has five Fridays: the fourth and the last differ.
    assert days("gregorian:05-fri-4", 2026) == [date(2026, 5, 22)]
    assert days("gregorian:05-fri-last", 2026) == [date(2026, 5, 29)]


def test_gregorian_one_off_and_persian_digits() -> None:
    assert days("gregorian:12-25", 2026) == [date(2026, 12, 25)]
    assert days("۲۰۲۷-۰۳-۲۰", 2027) == [date(2027, 3, 20)]
    assert days("2027-03-20", 2028) == []
    assert days("gregorian:02-29", 2027) == [date(2027, 2, 28)]
    assert days("gregorian:02-29", 2028) == [date(2028, 2, 29)]


def test_esfand_30_is_kept_on_the_29th_in_common_jalali_years() -> None:
    assert days("jalali:12-30", 2025) == [date(2025, 3, 20)]  # 1403 is a leap year
    assert days("jalali:12-30", 2026) == [date(2026, 3, 20)]  # 1404 is not: Esfand 29


def test_hijri_eid_al_fitr_by_umm_al_qura_and_corrected() -> None:
    # Umm al-Qura: 1 Shawwal 1447 = 2026-03-20, 1 Shawwal 1448 = 2027-03-09.
    assert days("hijri:10-01", 2026) == [date(2026, 3, 20)]
    assert days("hijri:10-01", 2027) == [date(2027, 3, 9)]
    assert days("hijri:10-01", 2027, {2027: date(2027, 3, 10)}) == [date(2027, 3, 10)]
    assert days("hijri:10-01", 2026, {2027: date(2027, 3, 10)}) == [date(2026, 3, 20)]


def test_a_hijri_date_twice_in_one_gregorian_year() -> None:
    # The lunar year is 11 days short: 1 Shawwal fell on 2000-01-08 and again on 2000-12-27.
    assert days("hijri:10-01", 2000) == [date(2000, 1, 8), date(2000, 12, 27)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("jalali:13-01", "bad month"),
        ("jalali:07-31", "month 07 has at most 30 days"),
        ("gregorian:11-fri-5", "1 to 4, or last"),
        ("gregorian:11-frx-4", "bad weekday"),
        ("2027-02-30", "bad date"),
        ("nowruz", "expected"),
        ("persian:01-01", "expected"),
    ],
)
def test_bad_occasion_dates_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_occasion_date(text)


def test_a_correction_further_than_three_days_is_refused() -> None:
    eid = parse_occasion_date("hijri:10-01")
    check_overrides(eid, {2027: date(2027, 3, 11)})
    with pytest.raises(ValueError, match="not within 3 days"):
        check_overrides(eid, {2027: date(2027, 4, 10)})
    with pytest.raises(ValueError, match="single day"):
        check_overrides(parse_occasion_date("2027-03-20"), {2027: date(2027, 3, 21)})


def test_config_overrides_are_normalised_and_checked() -> None:
    settings = Settings.model_validate(
        {"occasions": {"overrides": {"hijri:10-1": {"2027": "2027-03-10"}}}}
    )
    assert settings.occasions.overrides == {"hijri:10-01": {2027: date(2027, 3, 10)}}
    with pytest.raises(ValueError, match="not within 3 days"):
        Settings.model_validate({"occasions": {"overrides": {"hijri:10-01": {2027: "2027-05-01"}}}})
