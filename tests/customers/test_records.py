"""Order currencies: a code of letters, since every report shows it beside each amount."""

from __future__ import annotations

import pytest

from campaigner.config import CustomerDefaults
from campaigner.customers.records import RowError, order_row

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
