from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigner.customers.records import (
    RowError,
    parse_datetime,
    parse_number_time,
    parse_unix_time,
)

TEHRAN = ZoneInfo("Asia/Tehran")
PLAUSIBLE = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59)
).map(lambda moment: moment.replace(microsecond=0, tzinfo=UTC))


@given(PLAUSIBLE)
def test_seconds_and_milliseconds_both_read_right(moment: datetime) -> None:
    seconds = int(moment.timestamp())
    assert parse_unix_time(seconds) == moment
    assert parse_unix_time(seconds * 1000) == moment
    assert parse_datetime(str(seconds), TEHRAN) == moment


@pytest.mark.parametrize(
    "value", [99999999999, 0, 946684799, 4102444800, 946684799999, 10**15, -1772359200]
)
def test_numbers_outside_both_ranges_are_refused_with_the_rule(value: int) -> None:
    with pytest.raises(RowError, match="seconds or milliseconds between 2000 and 2099"):
        parse_unix_time(value)


def test_fractions_and_persian_digits() -> None:
    assert parse_unix_time("1772359200.25") == datetime(2026, 3, 1, 10, 0, tzinfo=UTC) + timedelta(
        milliseconds=250
    )
    assert parse_datetime("۱۷۷۲۳۵۹۲۰۰", TEHRAN) == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert parse_datetime("2026-03-01 13:30", TEHRAN) == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def test_an_iso_basic_date_is_never_taken_for_unix_time() -> None:
    # 20260501 as seconds is August 1970: outside the range, so it is read as the date.
    assert parse_datetime("20260501", TEHRAN) == datetime(2026, 4, 30, 20, 30, tzinfo=UTC)
    assert parse_number_time("20260501") == datetime(2026, 5, 1)
    with pytest.raises(RowError, match="seconds or milliseconds"):
        parse_number_time(20260501)  # a JSON number is a number
