"""Shop values longer than their columns: the record is kept, the value fitted, a warning given.

On PostgreSQL a value over a VARCHAR's width fails the whole batch, so these run on both
databases (the `sessions` fixture).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import regex
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.config import CustomerDefaults
from campaigner.customers.loader import load_customers, load_orders
from campaigner.customers.widths import fit_codes, fit_text
from campaigner.db.models import Customer, Order, OrderItem, OrderItemCategory

NOW = datetime(2026, 3, 1, tzinfo=UTC)
DEFAULTS = CustomerDefaults()
SHADDA, ZWNJ = "\u0651", "\u200c"
# 127 letters, then a letter with its shadda across the 128th character: cut before it.
MARKED = "ب" * 127 + "د" + SHADDA + "ر" * 200
# A half-space would be the 128th character: it joins nothing once the rest is gone.
HALF_SPACED = "ب" * 127 + ZWNJ + "ر" * 200


def whole_clusters(text: str, original: str) -> bool:
    """`text` is `original` cut at the end of a grapheme cluster, or before a space or
    joiner dropped from the end."""
    ends = {0} | {cluster.end() for cluster in regex.finditer(r"\X", original)}
    cut = len(text)
    return original.startswith(text) and (cut in ends or original[cut] in " \u200c\u200d")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Sara", "Sara"),
        ("x" * 128, "x" * 128),
        ("x" * 129, "x" * 128),
        (MARKED, "ب" * 127),
        (HALF_SPACED, "ب" * 127),
        ("a" * 127 + " " + "b" * 10, "a" * 127),
        ("a" * 127 + "\U0001f44d\U0001f3fd", "a" * 127),  # an emoji keeps its skin tone or goes
    ],
)
def test_text_is_cut_between_user_perceived_characters(text: str, expected: str) -> None:
    fitted = fit_text(text, 128)
    assert fitted == expected
    assert whole_clusters(fitted, text)


def test_a_letter_under_more_marks_than_the_width_is_cut_between_code_points() -> None:
    assert fit_text("a" + SHADDA * 300, 128) == "a" + SHADDA * 127


def test_coupon_lists_keep_the_whole_codes_that_fit() -> None:
    codes = ",".join(f"CODE{n:02d}-XXXXXXXX" for n in range(8))  # 8 codes of 15
    assert fit_codes(codes, 64) == ",".join(codes.split(",")[:4])
    assert fit_codes("X" * 65, 64) is None
    assert fit_codes("A,B", 64) == "A,B"


def test_a_customer_with_long_names_and_city_is_kept_with_warnings(
    sessions: sessionmaker[Session],
) -> None:
    record = {
        "external_id": "c1",
        "first_name": MARKED,
        "last_name": HALF_SPACED,
        "city": "Tehran " * 40,
        "phone": "09121234567",
    }
    with sessions.begin() as session:
        result = load_customers(session, [record], DEFAULTS, now=NOW)
    assert result.errors == [] and result.inserted == 1
    assert [w.field for w in result.warnings] == ["first_name", "last_name", "city"]
    assert result.warnings[0].reason == "first_name of 329 characters cut to 127"
    with sessions() as session:
        stored = session.scalars(select(Customer)).one()
    assert (stored.first_name, stored.last_name) == ("ب" * 127, "ب" * 127)
    assert stored.city == ("Tehran " * 19 + "Tehran")[:128].rstrip()
    assert len(stored.city) <= 128


def guest_order(**extra: Any) -> dict[str, Any]:
    return {
        "external_id": "7001",
        "total": "1500000",
        "status": "paid",
        "paid_at": "2026-02-20T10:00:00+00:00",
        "customer": {"first_name": MARKED, "last_name": "کاظمی", "phone": "09121112233"},
        **extra,
    }


def test_a_guest_order_with_a_long_billing_name_keeps_the_order_and_its_buyer(
    sessions: sessionmaker[Session],
) -> None:
    """Seen: a WooCommerce guest whose billing first name was over 128 characters lost the
    order (rejected: "customer.first_name longer than 128 characters")."""
    coupons = ",".join(f"SHOPCODE-{n:03d}" for n in range(10))  # 10 codes of 12: 129 in all
    items = [{"name": "چای " * 100, "sku": "S" * 200, "product_id": "57", "quantity": "1"}]
    order = guest_order(coupon_code=coupons, referral_code="R" * 40, items=items)
    with sessions.begin() as session:
        result = load_orders(session, [order], DEFAULTS, now=NOW)
    assert result.errors == [] and result.inserted == 1
    assert [(w.index, w.field) for w in result.warnings] == [
        (0, "customer.first_name"),
        (0, "coupon_code"),
        (0, "referral_code"),
        (0, "items"),
        (0, "items"),
    ]
    assert result.warnings[1].reason == "coupon_code longer than 64 characters: kept 5 of 10 codes"
    assert result.warnings[4].reason == "item 1: sku longer than 128 characters: left out"
    with sessions() as session:
        stored = session.scalars(select(Order)).one()
        buyer = session.get_one(Customer, stored.customer_id)
        item = session.scalars(select(OrderItem)).one()
    assert (buyer.external_id, buyer.first_name) == ("guest:+989121112233", "ب" * 127)
    assert stored.coupon_code == ",".join(coupons.upper().split(",")[:5])
    assert stored.referral_code is None
    assert (item.name, item.sku, item.product_id) == (("چای " * 100)[:255].rstrip(), None, "57")
    assert buyer.orders_count == 1


def test_an_id_too_long_still_rejects_its_record(sessions: sessionmaker[Session]) -> None:
    # Cutting an id could merge two customers: it is refused, as before.
    with sessions.begin() as session:
        result = load_customers(session, [{"external_id": "x" * 129}], DEFAULTS, now=NOW)
    assert [(e.field, e.reason) for e in result.errors] == [
        ("external_id", "external_id longer than 128 characters")
    ]


def test_a_long_category_of_an_orders_item_is_cut_with_a_warning(
    sessions: sessionmaker[Session],
) -> None:
    """As a sync (`[[sources]]`) or a webhook loads orders: the warning names the item."""
    with sessions.begin() as session:
        load_customers(session, [{"external_id": "c1", "phone": "09121111111"}], DEFAULTS, now=NOW)
        result = load_orders(
            session,
            [
                {
                    "external_id": "o1",
                    "customer_id": "c1",
                    "total": "100",
                    "paid_at": "2026-02-01 10:00",
                    "items": [{"name": "Tea", "categories": ["چای " * 80, "Drinks"]}],
                }
            ],
            DEFAULTS,
            now=NOW,
        )
    assert (result.inserted, result.errors) == (1, [])
    assert [(w.field, w.reason) for w in result.warnings] == [
        ("items", "item 1: category of 319 characters cut to 255")  # spaces folded first
    ]
    with sessions() as session:
        stored = sorted(session.scalars(select(OrderItemCategory.category)))
    assert stored == ["drinks", ("چای " * 80)[:255]]
