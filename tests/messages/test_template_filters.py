from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from campaigner.messages.filters import fa_digits, gregorian, jalali, money, shorten


def test_fa_digits() -> None:
    assert fa_digits("1405/09/02") == "۱۴۰۵/۰۹/۰۲"
    assert fa_digits(42) == "۴۲"
    assert fa_digits("کد THX-7K3M") == "کد THX-۷K۳M"
    assert fa_digits("no digits") == "no digits"


def test_jalali_default_and_named_formats() -> None:
    day = date(2026, 11, 23)
    assert jalali(day) == "۱۴۰۵/۰۹/۰۲"
    assert jalali(day, "%-d %B %Y") == "۲ آذر ۱۴۰۵"
    assert jalali(day, "%A %d %B") == "دوشنبه ۰۲ آذر"  # a Monday
    assert jalali(date(2026, 3, 21), "%-d %B %Y") == "۱ فروردین ۱۴۰۵"
    assert jalali(date(2026, 3, 20), "%Y/%m/%d") == "۱۴۰۴/۱۲/۲۹"


def test_jalali_of_a_datetime_uses_its_own_zone() -> None:
    # 22:00 UTC on March 20 is already March 21 (Nowruz, 1 Farvardin) in Tehran.
    instant = datetime(2026, 3, 20, 22, 0, tzinfo=UTC)
    assert jalali(instant.astimezone(ZoneInfo("Asia/Tehran")), "%-d %B") == "۱ فروردین"
    assert jalali(instant, "%-d %B") == "۲۹ اسفند"
    assert jalali(instant.astimezone(ZoneInfo("Asia/Tehran")), "%H:%M") == "۰۱:۳۰"


def test_gregorian() -> None:
    day = date(2026, 11, 3)
    assert gregorian(day) == "2026-11-03"
    assert gregorian(day, "%b %-d") == "Nov 3"
    assert gregorian(day, "%A, %-d %B %Y") == "Tuesday, 3 November 2026"
    assert gregorian(datetime(2026, 11, 3, 9, 5, tzinfo=UTC), "%d/%m %H:%M") == "03/11 09:05"
    assert gregorian(day, "100%% on %d") == "100% on 03"


def test_bad_date_format_and_value() -> None:
    with pytest.raises(ValueError, match="%Q"):
        gregorian(date(2026, 1, 1), "%Q")
    with pytest.raises(TypeError, match="expected a date"):
        jalali("2026-01-01")  # type: ignore[arg-type]


def test_money_persian() -> None:
    assert money(1250000, "IRT", "fa") == "۱٬۲۵۰٬۰۰۰ تومان"
    assert money(Decimal("12500000.00"), "IRR", "fa") == "۱۲٬۵۰۰٬۰۰۰ ریال"
    assert money(Decimal("49.90"), "USD", "fa") == "۴۹٫۹۰ USD"


def test_money_english() -> None:
    assert money(1250000, "IRT", "en") == "1,250,000 toman"
    assert money(Decimal("49.90"), "CAD", "en") == "49.90 CAD"
    assert money(Decimal("1200.00"), "cad", "en_CA") == "1,200 CAD"
    assert money("999", "", "en") == "999"
    with pytest.raises(ValueError, match="not an amount"):
        money("lots", "CAD", "en")


def test_shorten_on_word_boundary() -> None:
    text = "Thank you for shopping with us today"
    assert shorten(text, 100) == text
    assert shorten(text, 20) == "Thank you for..."
    assert len(shorten(text, 20)) <= 20
    assert shorten("Supercalifragilistic", 10) == "Superca..."
    assert shorten(text, 20, end="") == "Thank you for"


def test_shorten_persian() -> None:
    text = "از خرید شما از فروشگاه ما بسیار سپاسگزاریم"
    short = shorten(text, 20, end="…")
    assert short == "از خرید شما از…"
    assert len(short) <= 20
