"""One customer or order record, validated and normalised into column values.

CSV import, source sync and the ingest API all hand their records to these functions, so a
phone number, a Jalali birthday or a WooCommerce status means the same thing whichever way it
arrived. Values may be strings (CSV) or typed (a database row, a JSON body).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from contextlib import suppress
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

from campaigner.calendars import CALENDARS, jalali_month_day, month_day, parse_date
from campaigner.config import CustomerDefaults
from campaigner.customers.categories import split_text, store
from campaigner.customers.fields import date_name
from campaigner.customers.phones import InvalidPhone, normalize_phone, to_ascii_digits
from campaigner.timezones import check_timezone

GUEST_PREFIX = "guest:"
TRUE = {"1", "true", "yes", "y", "t", "on", "بله", "آری", "x"}
FALSE = {"0", "false", "no", "n", "f", "off", "خیر", "نه", ""}
# ISO 639-1 codes: a locale is one of these, optionally with a region (fa-IR, en_US).
_ISO_639_1 = """
    aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu
    cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi
    ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks
    ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl
    nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl
    sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve
    vi vo wa wo xh yi yo za zh zu
"""
LANGUAGES = frozenset(_ISO_639_1.split())
LANGUAGE_NAMES = {
    "persian": "fa",
    "farsi": "fa",
    "فارسی": "fa",
    "english": "en",
    "انگلیسی": "en",
    "arabic": "ar",
    "عربی": "ar",
    "turkish": "tr",
}
PAID = {"paid", "completed", "complete", "wc-completed", "processing", "wc-processing", "success"}
STATUSES = {"paid", "pending", "cancelled", "refunded", "failed"}
# True on a paid order record whose paid_at is the order's creation time, standing in for a
# payment time the shop did not send (WooCommerce, for some gateways): the loader makes it
# the time the order was first seen paid (`customers.loader.load_orders`).
PAID_AT_IS_CREATION = "paid_at_is_creation"
# Statuses of an order not paid yet, which may still be: seen paid later, it was paid then.
NOT_PAID_YET = frozenset({"pending", "failed"})
# Column sizes in the schema for what identifies a record or is checked against a list:
# longer values are rejected here rather than failing a batch. Free text and codes the shop
# sends (names, city, coupon and referral codes, item fields) never reject their record: the
# loader fits them to their columns (`campaigner.customers.widths`).
MAX_LENGTH = {
    "external_id": 128,
    "customer_id": 128,
    "locale": 10,
    "timezone": 64,
    "currency": 8,
}
MAX_AMOUNT = Decimal("1e12")
CENT = Decimal("0.01")
MAX_ITEMS = 2**31 - 1
# A number for a time is Unix time in seconds or in milliseconds, told apart by range: both
# must fall in [2000-01-01, 2100-01-01). The ranges cannot overlap (the last second is 4.1e9,
# the first millisecond 9.5e11), so a plausible seconds value is never read as milliseconds;
# a number outside both (99999999999: the year 5138, or 1973) is refused, not guessed.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
UNIX_SECONDS = (Decimal(946_684_800), Decimal(4_102_444_800))
UNIX_TIME_RULE = "a number is Unix time in seconds or milliseconds between 2000 and 2099"
# A time before this year is no order's: a Jalali date (۱۴۰۵/۰۸/۱۰, as Persian Excel writes
# it) read as ISO 8601 would be paid six centuries ago.
EARLIEST_YEAR = 1900
_NUMBER = re.compile(r"\d+(\.\d+)?")
_GROUPED = re.compile(r"[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?")  # 1,500,000.50
_NUMBER_AMONG = re.compile(r"(\D*?)[+-]?\d[\d.,\s]*?(\D*)")  # what is before and after it
_NUMBER_ENDS = frozenset("0123456789+-.,")  # how a bare amount begins and ends
_DOTTED = re.compile(r"[0-9]{1,3}(\.[0-9]{3})+")  # 150.000 or 1.250.000: dots between thousands
# Decimals of the currencies that have other than two (ISO 4217's minor units). The rial is
# written without decimals, as CLDR has it (ISO 4217 still counts the long-gone dinar); the
# toman (IRT, no ISO code) likewise.
_NO_DECIMALS = "IRR IRT BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE_DECIMALS = "BHD IQD JOD KWD LYD OMR TND"
MINOR_UNITS = {
    **dict.fromkeys(_NO_DECIMALS.split(), 0),
    **dict.fromkeys(_THREE_DECIMALS.split(), 3),
    "CLF": 4,
    "UYW": 4,
}

BirthdayFormat = Literal["auto", "gregorian", "jalali"]
# The key of a customer row holding its own dates; the loader writes them to their table.
OWN_DATES = "own_dates"


_CURRENCY = re.compile(r"[A-Z]{3,8}")
CURRENCY_NAMES = {"تومان": "IRT", "TOMAN": "IRT", "ریال": "IRR", "RIAL": "IRR"}


def parse_currency(value: str, default: str) -> str:
    """A currency code (ISO 4217 such as USD, or IRT for toman), upper-cased; the shop's
    default when empty. Letters only: the code is shown beside every amount of a report, in
    a terminal, a spreadsheet and a web page, so `=cmd|…` or a bidi override is refused."""
    text = value.strip().upper()
    if not text:
        return default
    text = CURRENCY_NAMES.get(text, text)
    if not _CURRENCY.fullmatch(text):
        raise RowError(
            f"bad currency {_quoted(value)}: "
            "expected a code of 3 to 8 letters such as IRT, IRR, USD",
            "currency",
        )
    return text


class RowError(ValueError):
    """A record that cannot be loaded; the message is the reason shown to the user."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.field = field


def as_text(value: Any) -> str:
    """A field value as the text the parsers read; None is empty."""
    if type(value) is str:  # what a CSV file gives: the common case first
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return str(value)


def text_record(raw: Mapping[str, Any]) -> dict[str, str]:
    """Every value as text; a NUL character (never valid in a name or id) rejects the record."""
    if all(type(value) is str for value in raw.values()) and "\x00" not in "".join(raw.values()):
        return dict(raw)  # a CSV row: text already, and clean
    record = {}
    for name, value in raw.items():
        text = as_text(value)
        if "\x00" in text:
            raise RowError(f"{name}: contains a NUL character", name)
        record[name] = text
    return record


# Bidirectional embeddings, overrides and isolates (LRE…RLO, LRI…PDI): one left open in a
# name turns the rest of the text message around it. ZWNJ, which Persian names need, stays.
_BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def plain_name(value: str) -> str:
    """A name or city as one line of text: spaces collapsed, no direction controls."""
    if value.isascii():  # no direction controls to drop
        return " ".join(value.split())
    return " ".join(value.translate(_BIDI_CONTROLS).split())


def parse_bool(value: str) -> bool:
    text = value.strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise RowError(f"not a yes/no value: {_quoted(value)}", "marketing_consent")


def parse_tags(value: str) -> str:
    if not value:
        return ""
    parts = [p.strip().lower() for p in value.replace(";", ",").replace("|", ",").split(",")]
    tags = sorted({p for p in parts if p})
    return "," + ",".join(tags) + "," if tags else ""


def minor_units(currency: str | None) -> int | None:
    """Digits after the decimal point in `currency`'s amounts; None when it is no currency
    code Campaigner knows the rule of (a code of other than three letters, such as POINTS)."""
    if currency is None:
        return None
    if currency in MINOR_UNITS:
        return MINOR_UNITS[currency]
    return 2 if len(currency) == 3 else None


def parse_amount(value: Any, field: str = "total", currency: str | None = None) -> Decimal:
    """An amount as a file writes it: `1500000`, `1,500,000.50`, or in Persian «۱٬۵۰۰٬۰۰۰» and
    «۱٫۵». A comma, ASCII or Persian, is read only as a thousands separator, between groups
    of three digits: `1,5` or `1.500,50` is a decimal comma, as Excel writes it in a Persian
    or European locale, and `۱٬۵` the thousands separator typed for its look-alike ٫; each
    is refused rather than read as 15.

    A dot is judged by `currency` (`minor_units`): in a currency without decimals (IRR, IRT)
    dots between groups of three digits are thousands, as Iranians write `150.000` for
    150,000, and a real fraction (`150.5`) is refused; in a currency with decimals, more of
    them than it has (`150.000` in USD) is refused as ambiguous rather than guessed. A
    number rather than text (a database's NUMERIC, a JSON number) is no locale's writing:
    it is read as it is.
    """
    name = _name(field)
    if not isinstance(value, str):
        amount = _decimal(as_text(value), value, field)
        _check_range(amount, value, field)
        return amount
    text = to_ascii_digits(value).strip().replace("٬", ",").replace("٫", ".") or "0"
    if not (text[0] in _NUMBER_ENDS and text[-1] in _NUMBER_ENDS) and _with_currency(text):
        raise RowError(
            f"{name}: bad amount {_quoted(value)}: write the number alone; the currency goes "
            "in its own column, the order's `currency` (IRT for toman, IRR for rial, USD, …)",
            field,
        )
    # A plus sign says nothing: without it, `+150.000` would escape the thousands rules.
    text = text.removeprefix("+")
    if "_" in text:
        raise RowError(
            f"{name}: bad amount {_quoted(value)}: an underscore is no separator; "
            "write digits (1500000) or thousands commas (1,500,000)",
            field,
        )
    digits = minor_units(currency)
    if "," in text:
        if not _GROUPED.fullmatch(text):
            raise RowError(
                f"{name}: ambiguous amount {_quoted(value)}: a comma is read only "
                "between thousands (1,500,000); write a decimal point (1.5)",
                field,
            )
        text = text.replace(",", "")
    elif digits == 0 and _DOTTED.fullmatch(text):
        text = text.replace(".", "")  # 150.000 toman: a hundred and fifty thousand
    elif digits is not None and text.count(".") > 1:
        raise RowError(
            f"{name}: ambiguous amount {_quoted(value)}: {currency} has {digits} decimals, so dots "
            "between thousands cannot be told from a decimal point; write 1250000 or 1,250,000",
            field,
        )
    amount = _decimal(text, value, field)
    _check_range(amount, value, field)
    places = max(0, -int(amount.as_tuple().exponent))
    if digits == 0 and amount != amount.to_integral_value():
        raise RowError(
            f"{name}: bad amount {_quoted(value)}: {currency} has no decimals, and this is a "
            "fraction; write a whole amount (dots or commas only between thousands)",
            field,
        )
    if digits and places > digits:
        raise RowError(
            f"{name}: ambiguous amount {_quoted(value)}: {currency} has {digits} decimals, not "
            f"{places}; is a dot between thousands? write 150000, 150,000 or 150.00",
            field,
        )
    return amount


def _with_currency(text: str) -> bool:
    """Whether `text` is a number with a currency sign or word beside it (`$150.00`,
    `150,000 ریال`). Only to say so: the currency is not read out of an amount, since `$` is
    more than one dollar and `150 هزار تومان` is 150,000."""
    match = _NUMBER_AMONG.fullmatch(text)
    if match is None:
        return False
    beside = [part.strip() for part in (match[1], match[2]) if part.strip()]
    return bool(beside) and all(map(_currency_like, beside))


def _currency_like(text: str) -> bool:
    """A currency sign (`$`, `€`, `﷼`) or words (`USD`, `تومان`, `Rls.`)."""
    if all(unicodedata.category(c) == "Sc" for c in text):
        return True
    return text.rstrip(".").replace(" ", "").isalpha()


def _decimal(text: str, value: Any, field: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise RowError(f"{_name(field)}: bad amount {_quoted(value)}", field) from None


def _check_range(amount: Decimal, value: Any, field: str) -> None:
    # As stored, in cents rounded half up: 999999999999.996 is 10^12, which NUMERIC(14, 2)
    # refuses (PostgreSQL failed the whole batch on it).
    if (
        not amount.is_finite()
        or amount < 0
        or amount >= MAX_AMOUNT
        or amount.quantize(CENT, rounding=ROUND_HALF_UP) >= MAX_AMOUNT
    ):
        raise RowError(f"{_name(field)}: bad amount {_quoted(value)}", field)


def _name(field: str) -> str:
    """A field as its reason names it: `unit_price`, not `items.3.unit_price`."""
    return field.rsplit(".", 1)[-1]


def _quoted(value: Any, limit: int = 40) -> str:
    """A value quoted in a reason, its start only: a 10,000-digit amount would otherwise be
    repeated whole in the reject file, a webhook's answer and the log."""
    text = as_text(value)
    return repr(text if len(text) <= limit else text[:limit] + "…")


def is_unix_time(value: object) -> bool:
    """A number (or digits) that `parse_unix_time` should read."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float | Decimal):
        return True
    return isinstance(value, str) and bool(_NUMBER.fullmatch(to_ascii_digits(value).strip()))


def parse_unix_time(value: object, field: str = "paid_at") -> datetime:
    """Unix time in seconds or milliseconds, by the rule above `UNIX_SECONDS`."""
    try:
        number = Decimal(to_ascii_digits(str(value)).strip())
    except InvalidOperation:
        number = Decimal("NaN")
    for scale in (1, 1000):
        low, high = UNIX_SECONDS[0] * scale, UNIX_SECONDS[1] * scale
        if number.is_finite() and low <= number < high:
            return EPOCH + timedelta(microseconds=int(number * 1_000_000 / scale))
    raise RowError(f"bad date/time {_quoted(value)}: {UNIX_TIME_RULE}", field)


def parse_number_time(value: object) -> datetime:
    """Digits as a time: Unix time (`parse_unix_time`), else an ISO 8601 basic date such as
    20260501, which no plausible Unix time looks like (returned naive: local time)."""
    try:
        return parse_unix_time(value)
    except RowError:
        if isinstance(value, str):
            with suppress(ValueError):
                return datetime.fromisoformat(to_ascii_digits(value).strip())
        raise


def parse_datetime(value: str, zone: ZoneInfo) -> datetime:
    """ISO 8601, a time without an offset being local time in the shop's time zone; or Unix
    time (`parse_number_time`)."""
    try:
        if is_unix_time(value):
            instant = parse_number_time(value)
        else:
            instant = datetime.fromisoformat(to_ascii_digits(value).strip().replace("/", "-"))
        if instant.year < EARLIEST_YEAR:
            raise RowError(
                f"bad date/time {_quoted(value)}: the year {instant.year} is no order's; a Jalali "
                "date? write it in the Gregorian calendar (2026-11-01)",
                "paid_at",
            )
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=zone)
        return instant.astimezone(UTC)
    except RowError:
        raise
    except (ValueError, OverflowError):
        raise RowError(
            f"bad date/time {_quoted(value)}: expected ISO 8601 (2026-05-01 14:30) or Unix time",
            "paid_at",
        ) from None


def normalize_status(value: str) -> str:
    text = value.strip().lower() or "paid"
    if text in PAID:
        return "paid"
    if text.startswith("wc-"):
        text = text[3:]
    if text == "canceled":
        text = "cancelled"
    if text not in STATUSES:
        raise RowError(f"unknown order status {_quoted(value)}", "status")
    return text


def parse_locale(value: str, default: str) -> str:
    """`fa`, `fa-IR`, `fa_IR`, `Persian` or «فارسی» → `fa`; anything else is an error."""
    text = value.strip().lower()
    if not text:
        return default
    text = LANGUAGE_NAMES.get(text, text).replace("_", "-")
    if text.split("-")[0] not in LANGUAGES or len(text) > MAX_LENGTH["locale"]:
        raise RowError(
            f"unknown locale {_quoted(value)}: expected a language code such as fa or en", "locale"
        )
    return text.split("-")[0]


def parse_shop_modified(raw: Mapping[str, str]) -> datetime | None:
    """When the shop last changed the record (`shop_modified_at`, given by shop webhooks and
    sync, never by a file); a time without an offset is UTC, as the shops' *_gmt fields."""
    text = raw.get("shop_modified_at", "").strip()
    if not text:
        return None
    try:
        return parse_datetime(text, ZoneInfo("UTC"))
    except RowError as exc:
        raise RowError(str(exc), "shop_modified_at") from None


def guest_id(phone: str) -> str:
    """The customer id of a buyer known only by a normalised phone number."""
    return GUEST_PREFIX + phone


# The limits that apply to each kind of row, in the order of MAX_LENGTH (the first too long
# is the one named): a customer row checks six, not every column of every kind.
_CUSTOMER_LIMITS = tuple(
    (name, limit)
    for name, limit in MAX_LENGTH.items()
    if name in ("external_id", "first_name", "last_name", "city", "locale", "timezone")
)
_ALL_LIMITS = tuple(MAX_LENGTH.items())


def _check_lengths(
    values: Mapping[str, Any], limits: tuple[tuple[str, int], ...] = _ALL_LIMITS
) -> None:
    for name, limit in limits:
        value = values.get(name)
        if isinstance(value, str) and len(value) > limit:
            raise RowError(f"{name} longer than {limit} characters", name)


def _birthday(
    text: str, birthday_format: BirthdayFormat, field: str = "birthday"
) -> tuple[date, bool, int]:
    """The Gregorian date, whether the text was a Jalali date, and its Jalali MMDD."""
    try:
        return _read_date(text, birthday_format)
    except ValueError as exc:
        reason = str(exc) if field == "birthday" else f"{field}: {exc}"
        raise RowError(reason, field) from None


@lru_cache(maxsize=65_536)
def _read_date(text: str, birthday_format: BirthdayFormat) -> tuple[date, bool, int]:
    """The date, whether it was Jalali, and its Jalali month and day (`_birthday`).

    Cached: a customer list repeats the same few tens of thousands of birthdays, and
    reading one was a tenth of a large import. A bad date raises again each time.
    """
    birthday = parse_date(text)
    jalali = int(to_ascii_digits(text).strip()[:4]) < 1700
    if birthday_format == "jalali" and not jalali:
        raise ValueError(f"bad date {text!r}: expected a Jalali date such as 1370/01/01")
    if birthday_format == "gregorian" and jalali:
        raise ValueError(f"bad date {text!r}: expected a Gregorian date such as 1990-03-21")
    # Out-of-range years fail here, not at write time.
    return birthday, jalali, jalali_month_day(birthday)


def _own_dates(
    raw: Mapping[str, str], birthday_format: BirthdayFormat
) -> dict[str, tuple[date, str]]:
    """The customer's own dates given (`date:<name>` fields): name -> (date, calendar it was
    written in). An empty value says nothing, so a date once given is kept."""
    dates: dict[str, tuple[date, str]] = {}
    for field, name in _date_fields(tuple(raw)):
        text = raw[field]
        if not text.strip():
            continue
        day, jalali, _ = _birthday(text, birthday_format, field)
        dates[name] = (day, "jalali" if jalali else "gregorian")
    return dates


@lru_cache(maxsize=1024)
def _date_fields(fields: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """The `date:<name>` fields among `fields`, with their names: a file's records all have
    the same fields, so each row need not test each of them again."""
    return tuple((field, name) for field in fields if (name := date_name(field)) is not None)


def customer_row(
    raw: Mapping[str, Any],
    defaults: CustomerDefaults,
    *,
    birthday_format: BirthdayFormat = "auto",
) -> dict[str, Any]:
    """Validate and normalise one customer record into column values."""
    raw = text_record(raw)
    external_id = raw.get("external_id", "").strip()
    if not external_id:
        raise RowError("missing customer id", "external_id")
    phone_text = raw.get("phone", "")
    try:
        phone = normalize_phone(phone_text, defaults.region) if phone_text.strip() else None
    except InvalidPhone as exc:
        raise RowError(str(exc), "phone") from None
    birthday, jalali_birthday, jalali_md = None, False, None
    if raw.get("birthday", "").strip():
        birthday, jalali_birthday, jalali_md = _birthday(raw["birthday"], birthday_format)
    calendar = raw.get("calendar", "").strip().lower()
    if not calendar:
        calendar = "jalali" if jalali_birthday or defaults.locale == "fa" else "gregorian"
    if calendar not in CALENDARS:
        raise RowError(f"unknown calendar {calendar!r} (gregorian or jalali)", "calendar")
    timezone = raw.get("timezone", "").strip() or defaults.timezone
    try:
        check_timezone(timezone)
    except ValueError as exc:
        raise RowError(str(exc), "timezone") from None
    values: dict[str, Any] = {
        "external_id": external_id,
        "first_name": plain_name(raw.get("first_name", "")),
        "last_name": plain_name(raw.get("last_name", "")),
        "phone": phone,
        "birthday": birthday,
        "birth_md": month_day(birthday) if birthday else None,
        "birth_jalali_md": jalali_md,
        "calendar": calendar,
        "timezone": timezone,
        "locale": parse_locale(raw.get("locale", ""), defaults.locale),
        "tags": parse_tags(raw.get("tags", "")),
        "marketing_consent": parse_bool(raw.get("marketing_consent", "")),
        "city": plain_name(raw.get("city", "")),
        "shop_modified_at": parse_shop_modified(raw),
    }
    _check_lengths(values, _CUSTOMER_LIMITS)
    dates = _own_dates(raw, birthday_format)
    if dates:
        values[OWN_DATES] = dates
    return values


def order_row(
    raw: Mapping[str, Any], defaults: CustomerDefaults, *, local_zone: str | None = None
) -> dict[str, Any]:
    """Validate one order record; `customer_id` is still the customer's external id.

    A paid_at without an offset is read in `local_zone` (default: the shop's time zone).
    Amounts are read by the order's currency (`parse_amount`).
    """
    given = raw
    raw = text_record(raw)
    external_id = raw.get("external_id", "").strip()
    if not external_id:
        raise RowError("missing order id", "external_id")
    customer = raw.get("customer_id", "").strip()
    if not customer:
        raise RowError("missing customer id (or the buyer's phone for a guest)", "customer_id")
    status = normalize_status(raw.get("status", ""))
    paid_text = raw.get("paid_at", "").strip()
    zone = ZoneInfo(local_zone or defaults.timezone)
    paid_at = parse_datetime(paid_text, zone) if paid_text else None
    if status == "paid" and paid_at is None:
        raise RowError("paid order without paid_at", "paid_at")
    items = raw.get("items_count", "").strip()
    try:
        if "_" in items:  # int() reads "1_000" as 1000
            raise ValueError(items)
        items_count = int(to_ascii_digits(items)) if items else None
    except ValueError:
        raise RowError(f"bad items_count {items!r}", "items_count") from None
    if items_count is not None and not 0 <= items_count <= MAX_ITEMS:
        raise RowError(f"bad items_count {items!r}", "items_count")
    currency = parse_currency(raw.get("currency", ""), defaults.currency)
    total = parse_amount(given.get("total") or "0", "total", currency)
    refunded = parse_amount(given.get("refunded") or "0", "refunded", currency)
    if refunded > total:
        raise RowError(
            f"refunded {str(refunded)!r} is more than the order total {str(total)!r}", "refunded"
        )
    values = {
        "external_id": external_id,
        "customer_id": customer,
        "total": total,
        "currency": currency,
        "status": status,
        "paid_at": paid_at,
        "coupon_code": raw.get("coupon_code", "").strip().upper() or None,
        "referral_code": raw.get("referral_code", "").strip().upper() or None,
        "items_count": items_count,
        "refunded": refunded,
        "shop_modified_at": parse_shop_modified(raw),
    }
    _check_lengths(values)
    return values


def item_rows(
    items: Sequence[Mapping[str, Any]], currency: str | None = None
) -> list[dict[str, Any]]:
    """Validate an order's line items; they are numbered 1, 2, … in the order given. Their
    amounts are read by their order's `currency` (`parse_amount`).

    A problem names its item as the ingest API does, `items.0.quantity` for the first. An item
    whose record names no categories (a shop webhook: the REST APIs send none) has `categories`
    None, for the loader to keep what is known of its product.
    """
    rows = []
    for index, raw_item in enumerate(items):
        where = f"items.{index}"
        given = raw_item.get("categories")
        if isinstance(given, list | tuple):  # a shop's term names: each one whole
            categories: str | None = store(map(as_text, given), whole=True)
        else:
            categories = None if given is None else store(split_text(as_text(given)), whole=True)
        if categories and "\x00" in categories:
            raise RowError(
                f"item {index + 1}: a category contains a NUL character", f"{where}.categories"
            )
        item = text_record({k: v for k, v in raw_item.items() if k != "categories"})
        name = " ".join(item.get("name", "").split())
        quantity_text = to_ascii_digits(item.get("quantity", "").strip() or "1")
        quantity = _quantity(quantity_text)
        if quantity is None:
            raise RowError(f"item {index + 1}: bad quantity {quantity_text!r}", f"{where}.quantity")
        unit_text = item.get("unit_price", "").strip()
        unit = raw_item.get("unit_price")
        unit_price = parse_amount(unit, f"{where}.unit_price", currency) if unit_text else None
        total_text = item.get("line_total", "").strip()
        if total_text:
            line_total = parse_amount(raw_item.get("line_total"), f"{where}.line_total", currency)
        else:
            line_total = (unit_price or Decimal(0)) * quantity
            if line_total >= MAX_AMOUNT:
                raise RowError(
                    f"item {index + 1}: unit_price × quantity is too large", f"{where}.line_total"
                )
        rows.append(
            {
                "line_no": index + 1,
                "product_id": item.get("product_id", "").strip() or None,
                "sku": item.get("sku", "").strip() or None,
                "name": name,
                "categories": categories,
                "quantity": quantity,
                "unit_price": unit_price,
                "line_total": line_total,
            }
        )
    return rows


def _quantity(text: str) -> int | None:
    """A whole number of units, or None. Range and fraction are judged on the Decimal before
    any int(): "Infinity" cannot become one, "1e999999999" would take minutes to, and "1.5"
    would quietly become 1; "1_0" would be 10."""
    if "_" in text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite() or not 0 <= value <= MAX_ITEMS or value != value.to_integral_value():
        return None
    return int(value)
