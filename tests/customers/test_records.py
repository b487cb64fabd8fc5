"""Order currencies: a code of letters, since every report shows it beside each amount; line
item quantities: a whole number in range, whatever the text."""

from __future__ import annotations

from decimal import Decimal

import pytest

from campaigner.config import CustomerDefaults
from campaigner.customers.records import RowError, item_rows, order_row

DEFAULTS = CustomerDefaults()


def order(currency: str) -> dict[str, str]:
    return {
        "external_id": "o1",
        "customer_id": "c1",
        "total": "100",
        "status": "paid",
        "paid_at": "2026-03-01 10:00",
        "currency": currency,
    }


@pytest.mark.parametrize(
    ("given", "stored"),
    [("usd", "USD"), (" irt ", "IRT"), ("", "IRT"), ("تومان", "IRT"), ("Rial", "IRR")],
)
def test_a_currency_is_an_upper_case_code(given: str, stored: str) -> None:
    assert order_row(order(given), DEFAULTS)["currency"] == stored


@pytest.mark.parametrize("given", ["=cmd|' /C calc'!A0", "\u202eDSU", "EU R", "[b]x", "€"])
def test_a_currency_that_is_no_code_rejects_the_order(given: str) -> None:
    """Regression: `=CMD|X` and an RLO-reversed `USD` were stored and shown beside every
    revenue figure of `report` (table, CSV, JSON, HTML)."""
    with pytest.raises(RowError, match="bad currency") as error:
        order_row(order(given), DEFAULTS)
    assert error.value.field == "currency"


@pytest.mark.parametrize("given", ["Infinity", "-inf", "sNaN", "1e999999999", "1.5", "-1", "1e10"])
def test_a_quantity_that_is_no_whole_number_in_range_rejects_the_item(given: str) -> None:
    """Regression: "Infinity" crashed `orders import --items` with an OverflowError,
    "1e999999999" hung it building a billion-digit int, and "1.5" was stored as 1."""
    with pytest.raises(RowError, match="bad quantity") as error:
        item_rows([{"name": "Tea", "quantity": "1"}, {"name": "Tea", "quantity": given}])
    assert error.value.field == "items.1.quantity"


@pytest.mark.parametrize(("given", "stored"), [("2", 2), ("2.00", 2), ("۳", 3), ("", 1)])
def test_a_whole_quantity_is_kept(given: str, stored: int) -> None:
    assert item_rows([{"name": "Tea", "quantity": given}])[0]["quantity"] == stored


@pytest.mark.parametrize(
    ("given", "currency", "stored"),
    [
        ("1,500,000", "IRT", Decimal(1_500_000)),  # Toman as Iranian shops write it
        ("1,500,000.50", "USD", Decimal("1500000.50")),
        ("۱٬۵۰۰٬۰۰۰", "IRT", Decimal(1_500_000)),  # Persian digits and thousands separator
        ("١٬٢٥٠", "IRR", Decimal(1250)),  # Arabic-Indic digits
        ("۱٫۵", "EUR", Decimal("1.5")),  # the Persian decimal separator
        ("12.75", "CAD", Decimal("12.75")),
        (" 250000 ", "IRT", Decimal(250_000)),
    ],
)
def test_an_amount_is_read_with_its_separators(given: str, currency: str, stored: Decimal) -> None:
    assert order_row({**order(currency), "total": given}, DEFAULTS)["total"] == stored


@pytest.mark.parametrize("given", ["1,5", "12,50", "1.500,50", "1,5000", "1,50,000", ",500"])
def test_a_comma_that_is_no_thousands_separator_rejects_the_amount(given: str) -> None:
    """Regression: `1,5` (Excel's decimal comma in a Persian or European locale) was read as
    15, ten times the amount, without a word."""
    with pytest.raises(RowError, match="ambiguous amount") as error:
        order_row({**order("IRT"), "total": given}, DEFAULTS)
    assert error.value.field == "total"
    assert "total" in str(error.value)


@pytest.mark.parametrize("given", ["۱٬۵", "1٬5", "۱٬۵۰", "1٬50٬0", "۱٬۵۰۰۰", "٬۵۰۰"])
def test_a_persian_thousands_separator_out_of_place_rejects_the_amount(given: str) -> None:
    """Regression: the Persian thousands separator was dropped wherever it stood, so `۱٬۵`
    (the separator typed for the look-alike decimal one, ٫) was read as 15, as `1,5` was."""
    with pytest.raises(RowError, match="ambiguous amount") as error:
        order_row({**order("IRT"), "total": given}, DEFAULTS)
    assert error.value.field == "total"


@pytest.mark.parametrize(
    ("given", "currency", "stored"),
    [("۱٬۲۵۰٬۰۰۰٫۵", "USD", Decimal("1250000.5")), ("1,250٬000", "IRT", Decimal(1_250_000))],
)
def test_persian_and_ascii_separators_between_thousands_are_read(
    given: str, currency: str, stored: Decimal
) -> None:
    assert order_row({**order(currency), "total": given}, DEFAULTS)["total"] == stored


def test_an_items_amount_with_a_decimal_comma_names_its_item() -> None:
    with pytest.raises(RowError, match="ambiguous amount") as error:
        item_rows([{"name": "Tea", "unit_price": "2,5"}])
    assert error.value.field == "items.0.unit_price"


@pytest.mark.parametrize("given", ["1_5", "1_500_000", "۱_۵", "1_5.5"])
def test_an_underscore_in_an_amount_rejects_it_naming_the_field(given: str) -> None:
    """Regression: `1_5` was read as 15 (Python's Decimal takes underscores between digits),
    like the decimal comma: a typo or a locale's separator stored as another amount."""
    with pytest.raises(RowError, match="underscore") as error:
        order_row({**order("IRT"), "refunded": given, "total": "100000000"}, DEFAULTS)
    assert error.value.field == "refunded"
    assert "refunded" in str(error.value)


def test_an_underscore_in_a_count_or_an_items_number_rejects_it() -> None:
    """int("1_000") and Decimal("1_0") read underscores too: a quantity of `1_0` was 10."""
    with pytest.raises(RowError) as error:
        order_row({**order("IRT"), "items_count": "1_000"}, DEFAULTS)
    assert error.value.field == "items_count"
    with pytest.raises(RowError) as error:
        item_rows([{"name": "Tea", "quantity": "1_0"}])
    assert error.value.field == "items.0.quantity"
    with pytest.raises(RowError) as error:
        item_rows([{"name": "Tea", "line_total": "2_5"}])
    assert error.value.field == "items.0.line_total"


@pytest.mark.parametrize("given", ["۱۴۰۵/۰۸/۱۰", "1405-08-10 14:30", "1399/12/30"])
def test_a_jalali_paid_at_is_refused_not_read_as_a_gregorian_year(given: str) -> None:
    """Regression: `۱۴۰۵/۰۸/۱۰` (a Jalali date, as Persian Excel writes it) was stored as
    paid in the Gregorian year 1405, six centuries ago: the buyer ranked lost, and the order
    out of every period."""
    with pytest.raises(RowError, match="Jalali") as error:
        order_row({**order("IRT"), "paid_at": given}, DEFAULTS)
    assert error.value.field == "paid_at"


def test_a_paid_at_of_this_century_is_read() -> None:
    row = order_row({**order("IRT"), "paid_at": "۲۰۲۶/۱۱/۰۱ ۱۰:۰۰"}, DEFAULTS)
    assert row["paid_at"].year == 2026


# The shapes of amounts as files from Iran and from en-US carry them. A number formatted with
# Persian locale data has ٬ between thousands and ٫ before decimals (CLDR's fa_IR, as in
# github.com/tdd/sudweb-g11n public/demos/jouer-avec-les-libs/numberformat-locale/fa_IR.js:
# DECIMAL_SEP "\u066b", GROUP_SEP "\u066c", pattern "#,##0.###"); older Windows had "/" as
# fa-IR's decimal separator (NumberDecimalSeparator "/",
# github.com/MahApps/MahApps.Metro/issues/3665). en-US writes "1,250,000.00". By hand,
# Iranians write thousands with dots: 150.000 for 150,000.
@pytest.mark.parametrize(
    ("given", "currency", "stored"),
    [
        ("150.000", "IRT", Decimal(150_000)),  # dots between thousands, by hand
        ("1.250.000", "IRR", Decimal(1_250_000)),
        ("۱.۲۵۰.۰۰۰", "IRT", Decimal(1_250_000)),
        ("150٬000", "IRT", Decimal(150_000)),  # Persian locale data: U+066C between thousands
        ("۱٬۲۵۰٬۰۰۰", "IRR", Decimal(1_250_000)),
        ("1,250,000", "IRT", Decimal(1_250_000)),  # en-US
        ("1,250,000.00", "IRT", Decimal(1_250_000)),  # en-US, two decimals shown
        ("150000.00", "IRT", Decimal(150_000)),  # a shop keeping two (zero) decimals
        ("1,250,000.00", "USD", Decimal("1250000.00")),
        ("150٫50", "USD", Decimal("150.50")),  # Persian locale data: U+066B before decimals
        ("150.5", "EUR", Decimal("150.5")),
        ("150.000", "KWD", Decimal(150)),  # a currency with three decimals has them
        ("150.000", "POINTS", Decimal(150)),  # no code Campaigner knows: read as before
    ],
)
def test_a_dot_is_read_by_the_currencys_decimals(
    given: str, currency: str, stored: Decimal
) -> None:
    """Regression: `150.000` toman, written as Iranians write 150,000, was stored as 150."""
    assert order_row({**order(currency), "total": given}, DEFAULTS)["total"] == stored


@pytest.mark.parametrize(
    ("given", "currency", "why"),
    [
        ("150.5", "IRT", "IRT has no decimals, and this is a fraction"),
        ("150٫5", "IRR", "IRR has no decimals, and this is a fraction"),  # Persian locale data
        ("1,250.5", "IRT", "IRT has no decimals, and this is a fraction"),
        ("150.000", "USD", "ambiguous amount '150.000': USD has 2 decimals, not 3"),
        ("1.250.000", "USD", "ambiguous amount '1.250.000': USD has 2 decimals, so dots"),
        ("150.0000", "CAD", "ambiguous amount '150.0000': CAD has 2 decimals, not 4"),
        ("1.250.000", "KWD", "ambiguous amount '1.250.000': KWD has 3 decimals, so dots"),
        ("150.00,5", "IRT", "ambiguous amount '150.00,5': a comma is read only"),
        ("1.500,00", "IRT", "ambiguous amount '1.500,00': a comma is read only"),
        ("150/5", "IRT", "bad amount '150/5'"),  # older Windows fa-IR's decimal separator
    ],
)
def test_an_amount_the_currency_cannot_have_is_refused_naming_the_field(
    given: str, currency: str, why: str
) -> None:
    with pytest.raises(RowError) as error:
        order_row({**order(currency), "total": "0", "refunded": given}, DEFAULTS)
    assert error.value.field == "refunded"
    assert why in str(error.value)


@pytest.mark.parametrize(
    ("given", "currency", "stored"),
    [
        ("+150.000", "IRT", Decimal(150_000)),
        ("+۱۵۰٫۰۰۰", "IRR", Decimal(150_000)),
        (" +1.250.000 ", "IRT", Decimal(1_250_000)),
        ("+1,250,000", "IRT", Decimal(1_250_000)),
        ("+150.5", "USD", Decimal("150.5")),
    ],
)
def test_a_plus_sign_is_read_as_the_same_amount(given: str, currency: str, stored: Decimal) -> None:
    """Regression: `+150.000` toman (a sign as a spreadsheet may keep it) escaped the
    thousands-dot rule and was stored as 150, a thousandth of the amount."""
    assert order_row({**order(currency), "total": given}, DEFAULTS)["total"] == stored


@pytest.mark.parametrize(
    ("given", "currency"),
    [
        ("150 تومان", "IRT"),
        ("150,000 ریال", "IRR"),  # was "ambiguous amount: a comma is read only between ..."
        ("۱۵۰٬۰۰۰ ریال", "IRR"),
        ("$150.00", "USD"),
        ("150.00 USD", "USD"),
        ("€ 1.250,50", "EUR"),
        ("150 هزار تومان", "IRT"),
    ],
)
def test_an_amount_written_with_its_currency_says_to_give_the_currency_its_own_column(
    given: str, currency: str
) -> None:
    """A new user's export wrote the currency beside every amount and got a bare `bad amount`.
    The currency is not read out of an amount (`150 هزار تومان` is 150,000, `$` is not only
    the US dollar): the reason says where it goes instead."""
    with pytest.raises(RowError) as error:
        order_row({**order(currency), "total": given}, DEFAULTS)
    assert error.value.field == "total"
    assert str(error.value).startswith(f"total: bad amount {given!r}: ")
    assert "the currency goes in its own column" in str(error.value)


def test_an_item_amount_with_its_currency_names_the_items_field() -> None:
    with pytest.raises(RowError) as error:
        item_rows([{"name": "Tea", "quantity": "1", "unit_price": "۴۸۰٬۰۰۰ تومان"}], "IRT")
    assert error.value.field == "items.0.unit_price"
    assert str(error.value).startswith("unit_price: bad amount '۴۸۰٬۰۰۰ تومان': ")
    assert "the currency goes in its own column" in str(error.value)


@pytest.mark.parametrize("given", ["150/5", "1e5x", "150 1"])
def test_an_amount_without_a_currency_gets_no_currency_hint(given: str) -> None:
    with pytest.raises(RowError) as error:
        order_row({**order("IRT"), "total": given}, DEFAULTS)
    assert "currency" not in str(error.value)


@pytest.mark.parametrize("given", ["NaN", "Infinity", "-5", "1" * 13])
def test_an_amount_out_of_range_is_refused_naming_its_field(given: str) -> None:
    """Regression: `bad amount 'NaN'` named no field (every other amount error did), so
    the reject file could not tell a bad total from a bad refund."""
    with pytest.raises(RowError, match=r"^refunded: bad amount") as error:
        order_row({**order("IRT"), "refunded": given}, DEFAULTS)
    assert error.value.field == "refunded"


@pytest.mark.parametrize("given", [Decimal("999999999999.9961"), 999999999999.996])
def test_an_amount_that_rounds_to_the_limit_is_refused(given: Decimal | float) -> None:
    """Found by the ingest API's generated requests: a JSON total of 999999999999.9961 was
    under the limit, but stored in cents it is 10^12, and PostgreSQL refused the batch."""
    with pytest.raises(RowError, match=r"^total: bad amount"):
        order_row({**order("USD"), "total": given}, DEFAULTS)
    assert order_row({**order("USD"), "total": Decimal("999999999999.994")}, DEFAULTS)


@pytest.mark.parametrize("currency", ["IRT", "USD"])
def test_a_huge_amount_is_quoted_shortened(currency: str) -> None:
    """Regression: a 10,000-digit amount was quoted whole in its reason (the reject file,
    a webhook's answer and log)."""
    with pytest.raises(RowError) as error:
        order_row({**order(currency), "total": "9" * 10_000}, DEFAULTS)
    assert len(str(error.value)) < 200


def test_a_number_rather_than_text_is_read_as_it_is() -> None:
    """A database's NUMERIC (a sync) or a shop's parsed amount is no locale's writing:
    Decimal("150.00000000"), as WooCommerce stores a total, is 150 dollars."""
    values = order_row({**order("USD"), "total": Decimal("150.00000000")}, DEFAULTS)
    assert values["total"] == Decimal(150)
    assert order_row({**order("IRT"), "total": 150_000}, DEFAULTS)["total"] == Decimal(150_000)


def test_an_items_amounts_are_read_by_its_orders_currency() -> None:
    (toman,) = item_rows([{"name": "Tea", "unit_price": "150.000"}], "IRT")
    assert toman["unit_price"] == Decimal(150_000)
    with pytest.raises(RowError, match="USD has 2 decimals, not 3") as error:
        item_rows([{"name": "Tea", "line_total": "150.000"}], "USD")
    assert error.value.field == "items.0.line_total"
