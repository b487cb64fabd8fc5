"""Template filters for dates, digits, money and length, in Persian and English.

They are plain functions, so they can be tested and used outside templates too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

import jdatetime

from campaigner.calendars import jalali_date, jalali_weekday

PERSIAN_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
PERSIAN_THOUSANDS = "٬"  # U+066C ARABIC THOUSANDS SEPARATOR, the Persian convention
PERSIAN_DECIMAL = "٫"  # U+066B ARABIC DECIMAL SEPARATOR

GREGORIAN_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
GREGORIAN_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
# Currencies without minor units in everyday use: amounts are shown without decimals.
WHOLE_CURRENCIES = {"IRT", "IRR"}
CURRENCY_NAMES = {
    "fa": {"IRT": "تومان", "IRR": "ریال"},
    "en": {"IRT": "toman", "IRR": "rial"},
}

_DIRECTIVE = re.compile(r"%(-?)([A-Za-z%])")


def fa_digits(value: object) -> str:
    """Latin digits to Persian digits: 1405 → ۱۴۰۵."""
    return str(value).translate(PERSIAN_DIGITS)


def jalali(value: date, fmt: str = "%Y/%m/%d") -> str:
    """A date in the Jalali calendar with Persian digits and month names.

    `%-d %B %Y` gives «۲ آذر ۱۴۰۵»; the default gives ۱۴۰۵/۰۹/۰۲. A datetime keeps its own
    time zone (the context's dates are already in the customer's zone).
    """
    day = _as_date(value)
    year, month, dom = jalali_date(day)
    weekday = jdatetime.date.j_weekdays_fa[jalali_weekday(day)]
    fields: dict[str, str | int] = {
        "Y": year,
        "y": year % 100,
        "m": month,
        "d": dom,
        "B": jdatetime.date.j_months_fa[month - 1],
        "b": jdatetime.date.j_months_fa[month - 1],
        "A": weekday,
        "a": weekday,
    }
    return fa_digits(_format(value, fmt, fields))


def gregorian(value: date, fmt: str = "%Y-%m-%d") -> str:
    """A date in the Gregorian calendar with English month names: `%b %-d` gives "Nov 23"."""
    day = _as_date(value)
    fields: dict[str, str | int] = {
        "Y": day.year,
        "y": day.year % 100,
        "m": day.month,
        "d": day.day,
        "B": GREGORIAN_MONTHS[day.month - 1],
        "b": GREGORIAN_MONTHS[day.month - 1][:3],
        "A": GREGORIAN_WEEKDAYS[day.weekday()],
        "a": GREGORIAN_WEEKDAYS[day.weekday()][:3],
    }
    return _format(value, fmt, fields)


def money(value: object, currency: str = "IRT", locale: str = "fa") -> str:
    """An amount with thousands separators and its currency.

    Toman and rial are named in the customer's language («۱٬۲۵۰٬۰۰۰ تومان», "1,250,000 toman");
    other currencies show their code ("25.50 CAD"). Persian gets Persian digits and separators.
    """
    amount = _decimal(value)
    code = (currency or "").upper()
    language = _language(locale)
    if code in WHOLE_CURRENCIES or amount == amount.to_integral_value():
        text = f"{amount.quantize(Decimal(1)):,}"
    else:
        text = f"{amount.quantize(Decimal('0.01')):,}"
    name = CURRENCY_NAMES.get(language, CURRENCY_NAMES["en"]).get(code, code)
    if language == "fa":
        text = fa_digits(text.replace(",", "\0").replace(".", PERSIAN_DECIMAL))
        text = text.replace("\0", PERSIAN_THOUSANDS)
    return f"{text} {name}".strip()


def shorten(text: object, length: int, end: str = "...") -> str:
    """At most `length` characters, cut at a word boundary, with `end` marking the cut."""
    value = " ".join(str(text).split())
    if len(value) <= length:
        return value
    room = max(length - len(end), 0)
    cut = value[: room + 1]
    cut = cut[: cut.rfind(" ")] if " " in cut else value[:room]
    return cut.rstrip(" ,.;:،؛") + end


FILTERS: dict[str, Callable[..., str]] = {
    "fa_digits": fa_digits,
    "jalali": jalali,
    "gregorian": gregorian,
    "money": money,
    "shorten": shorten,
}


def _as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    raise TypeError(f"expected a date, got {type(value).__name__} {value!r}")


def _format(value: date, fmt: str, fields: dict[str, str | int]) -> str:
    """strftime with fixed (locale-independent) names and `%-d` for no zero padding."""
    hour = value.hour if isinstance(value, datetime) else 0
    minute = value.minute if isinstance(value, datetime) else 0
    numbers = {**fields, "H": hour, "M": minute}

    def replace(match: re.Match[str]) -> str:
        unpadded, key = match.groups()
        if key == "%":
            return "%"
        if key not in numbers:
            raise ValueError(f"unsupported date format %{unpadded}{key} in {fmt!r}")
        item = numbers[key]
        if isinstance(item, str):
            return item
        width = 4 if key == "Y" else 2
        return str(item) if unpadded else f"{item:0{width}d}"

    return _DIRECTIVE.sub(replace, fmt)


def _decimal(value: object) -> Decimal:
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    return amount


def _language(locale: str) -> str:
    return (locale or "").replace("-", "_").split("_")[0].lower()
