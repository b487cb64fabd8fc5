"""cross_sell with the injected clock: due `after` an order containing `bought`, not when
`suggest` was bought in that order or since, once per triggering order, never history."""

from __future__ import annotations

import pytest
from product_shop import BEANS, POT, TEA, ProductShop, day, item, make_rule
from sqlalchemy.orm import Session, sessionmaker

from campaigner.config import Settings
from campaigner.rules.models import CrossSellRule

RULE = make_rule(
    trigger="cross_sell",
    after="7d",
    max_lateness="1d",
    bought={"categories": ["teaware"]},
    suggest={"categories": ["Tea"], "products": ["BEAN-70"]},
)


@pytest.fixture
def shop(sessions: sessionmaker[Session], settings: Settings) -> ProductShop:
    return ProductShop(sessions, settings)


def test_due_after_the_order_and_once(shop: ProductShop) -> None:
    shop.customer("ali")
    shop.order("ali", day(0), POT, external_id="A1")
    shop.plan([RULE], day(6, 23))
    assert shop.ledger() == []  # not yet
    shop.plan([RULE], day(7, 1))
    shop.plan([RULE], day(7, 2))  # again: nothing new
    assert shop.ledger() == [("cross_sell", "ali", shop.external_key("A1"), day(7))]


def test_not_when_the_suggestion_was_in_the_same_order_or_bought_since(
    shop: ProductShop,
) -> None:
    for name in ("same", "since", "since_by_sku", "before", "unpaid_since", "after_due"):
        shop.customer(name)
        shop.order(name, day(0), POT, external_id=f"{name}-pot")
    shop.order("same", day(-1), item("Tea towel"))
    shop.order("same", day(0, 1), TEA, POT)  # its own triggering order holds tea
    shop.order("since", day(3), TEA)
    shop.order("since_by_sku", day(3), item("Beans", sku="BEAN-70"))
    shop.order("before", day(-30), TEA)  # tea before the teapot: still worth suggesting
    shop.order("unpaid_since", day(3), TEA, status="cancelled")
    shop.order("after_due", day(9), BEANS)  # after the planning instant: not "since" yet
    shop.plan([RULE], day(7, 12))
    due = {(who, key) for _, who, key, _ in shop.ledger()}
    assert due == {
        ("before", shop.external_key("before-pot")),
        ("unpaid_since", shop.external_key("unpaid_since-pot")),
        ("after_due", shop.external_key("after_due-pot")),
    }


def test_each_triggering_order_is_its_own_occurrence(shop: ProductShop) -> None:
    shop.customer("ali")
    shop.order("ali", day(0), POT, external_id="A1")
    shop.order("ali", day(20), POT, external_id="A2")
    shop.plan([RULE], day(7, 1))
    shop.plan([RULE], day(27, 1))
    keys = [key for _, _, key, _ in shop.ledger()]
    assert keys == [shop.external_key("A1"), shop.external_key("A2")]


def test_orders_without_the_bought_products_and_history_are_ignored(shop: ProductShop) -> None:
    shop.customer("other")
    shop.order("other", day(0), BEANS)
    shop.customer("old")
    shop.order("old", day(-300), POT)  # a first deploy never follows up last year's orders
    shop.customer("quiet", consent=False)
    shop.order("quiet", day(0), POT)
    shop.plan([RULE], day(7, 1))
    assert shop.ledger() == []


def test_a_suggestion_is_named_unless_a_category_names_it() -> None:
    with pytest.raises(ValueError, match="suggestion"):
        make_rule(
            trigger="cross_sell",
            after="7d",
            bought={"categories": ["teaware"]},
            suggest={"products": ["BEAN-70"]},
        )
    assert isinstance(RULE, CrossSellRule)
    assert RULE.suggestion_text == "tea"
