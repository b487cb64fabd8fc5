"""Audiences `bought_any` / `bought_none`: products by id or SKU, categories (with commas,
folded), `within`, only paid orders, and only orders up to the planning instant."""

from __future__ import annotations

import pytest
from product_shop import BEANS, POT, TEA, ProductShop, day, item, make_rule
from sqlalchemy.orm import Session, sessionmaker

from campaigner.config import Settings
from campaigner.rules.models import Audience


@pytest.fixture
def shop(sessions: sessionmaker[Session], settings: Settings) -> ProductShop:
    """tea: bought tea 100 days ago; pot: a teapot 10 days ago; none: coffee only;
    pending: tea in an unpaid order; later: tea after the planning instant."""
    shop = ProductShop(sessions, settings)
    for name in ("tea", "pot", "none", "pending", "later"):
        shop.customer(name)
    shop.order("tea", day(0), TEA)
    shop.order("pot", day(90), POT, BEANS)
    shop.order("none", day(95), BEANS)
    shop.order("pending", day(95), TEA, status="pending")
    shop.order("later", day(101), TEA)
    for name in ("tea", "pot", "none", "pending", "later"):
        shop.order(name, day(99, 20), item("Gift card"))  # the thank-you's occurrence
    return shop


def thanked(shop: ProductShop, **audience: object) -> set[str]:
    """Who a thank-you for yesterday's order reaches with this audience, planned at day 100."""
    rule = make_rule(
        trigger="post_purchase",
        delay="2h",
        max_lateness="1d",
        audience=Audience.model_validate(audience),
    )
    shop.plan([rule], day(100))
    return {who for _, who, _, _ in shop.ledger()}


@pytest.mark.parametrize(
    ("bought", "expected"),
    [
        ({"products": ["57"]}, {"tea"}),  # by product id
        ({"products": ["POT-90"]}, {"pot"}),  # by SKU
        ({"categories": ["tea"]}, {"tea"}),
        ({"categories": ["  DRINKS,   Hot "]}, {"tea"}),  # a comma in the name; folded
        ({"categories": ["teaware"], "products": ["57"]}, {"tea", "pot"}),
        ({"categories": ["tea"], "within": "30d"}, set()),  # 100 days ago is too long
        ({"categories": ["teaware"], "within": "30d"}, {"pot"}),
        ({"categories": ["cookware"]}, set()),
    ],
)
def test_bought_any(shop: ProductShop, bought: dict[str, object], expected: set[str]) -> None:
    assert thanked(shop, bought_any=bought) == expected


def test_bought_none_is_everyone_else(shop: ProductShop) -> None:
    assert thanked(shop, bought_none={"categories": ["tea"]}) == {"pot", "none", "pending", "later"}


def test_bought_none_within_lets_old_buyers_back_in(shop: ProductShop) -> None:
    everyone = {"tea", "pot", "none", "pending", "later"}
    assert thanked(shop, bought_none={"products": ["TEA-57"], "within": "30d"}) == everyone


def test_audience_names_something_to_buy() -> None:
    with pytest.raises(ValueError, match="name products or categories"):
        Audience.model_validate({"bought_any": {"within": "30d"}})
    with pytest.raises(ValueError, match="blank"):
        Audience.model_validate({"bought_any": {"categories": ["  "]}})
