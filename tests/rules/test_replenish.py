"""replenish with the injected clock: `days` after the last purchase, unless bought again;
once per last purchase; `days = "auto"` is the median reorder interval, checked against a
hand-computed set on every database."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from product_shop import BEANS, POT, TEA, ProductShop, day, item, make_rule
from sqlalchemy.orm import Session, sessionmaker

from campaigner.config import Settings
from campaigner.products.reorder import reorder_days
from campaigner.rules.models import ProductSet

RULE = make_rule(trigger="replenish", days=30, max_lateness="1d", bought={"products": ["TEA-57"]})


@pytest.fixture
def shop(sessions: sessionmaker[Session], settings: Settings) -> ProductShop:
    return ProductShop(sessions, settings)


def test_due_days_after_the_last_purchase_once(shop: ProductShop) -> None:
    shop.customer("ali")
    shop.order("ali", day(0), TEA, external_id="A1")
    shop.plan([RULE], day(29, 23))
    assert shop.ledger() == []
    shop.plan([RULE], day(30, 1))
    shop.plan([RULE], day(30, 5))
    assert shop.ledger() == [("replenish", "ali", shop.external_key("A1"), day(30))]


def test_bought_again_starts_over(shop: ProductShop) -> None:
    shop.customer("ali")
    shop.order("ali", day(0), TEA, external_id="A1")
    shop.order("ali", day(20), item("Chai", sku="TEA-57"), external_id="A2")  # same, by SKU
    shop.order("ali", day(25), POT)  # something else: no new episode
    shop.plan([RULE], day(30, 1))
    assert shop.ledger() == []  # the first purchase was followed by another
    shop.plan([RULE], day(50, 1))
    assert shop.ledger() == [("replenish", "ali", shop.external_key("A2"), day(50))]


def test_bought_again_before_the_planning_instant_only(shop: ProductShop) -> None:
    """A purchase after the planning instant is not yet known (simulate's future)."""
    shop.customer("ali")
    shop.order("ali", day(0), TEA, external_id="A1")
    shop.order("ali", day(31), TEA, external_id="A2")
    shop.plan([RULE], day(30, 1))
    assert [key for _, _, key, _ in shop.ledger()] == [shop.external_key("A1")]


def test_two_purchases_at_the_same_instant_make_one_episode(shop: ProductShop) -> None:
    shop.customer("ali")
    shop.order("ali", day(0), TEA, external_id="A1")
    shop.order("ali", day(0), TEA, external_id="A2")
    shop.plan([RULE], day(30, 1))
    assert [key for _, _, key, _ in shop.ledger()] == [shop.external_key("A2")]


def reorder_shop(shop: ProductShop) -> None:
    """Gaps between purchases of tea (by id, SKU or a second line), per customer:
    a: 10, 20 · b: 30 · c: 12.5 (half days count) · d: one purchase (no gap) ·
    e: 40, but the middle order is cancelled (one gap of 40) · f: coffee only.
    Gaps sorted: 10, 12.5, 20, 30, 40 → median 20."""
    for name in "abcdef":
        shop.customer(name)
    shop.order("a", day(0), TEA)
    shop.order("a", day(10), item("Chai", sku="TEA-57"), POT)
    shop.order("a", day(30), TEA, TEA)
    shop.order("b", day(5), TEA)
    shop.order("b", day(35), TEA)
    shop.order("c", day(1), TEA)
    shop.order("c", day(13, 12), TEA)
    shop.order("d", day(2), TEA)
    shop.order("e", day(0), TEA)
    shop.order("e", day(20), TEA, status="cancelled")
    shop.order("e", day(40), TEA)
    shop.order("f", day(0), BEANS)
    shop.order("f", day(1), BEANS)


def test_auto_days_is_the_median_reorder_interval(
    shop: ProductShop, sessions: sessionmaker[Session]
) -> None:
    reorder_shop(shop)
    tea = ProductSet(products=["TEA-57"])
    with sessions() as session:
        assert reorder_days(session, tea, day(100)) == 20
        # Up to day 31 the gaps are 10, 12.5 and 20; half a day rounds up everywhere.
        assert reorder_days(session, tea, day(31)) == 13
        # An even count averages the middle two: up to day 25, 10 and 12.5.
        assert reorder_days(session, tea, day(25)) == 11
        assert reorder_days(session, ProductSet(products=["70"]), day(100)) == 1
        assert reorder_days(session, ProductSet(products=["90"]), day(100)) is None


def test_auto_days_plans_with_the_median(shop: ProductShop) -> None:
    reorder_shop(shop)
    rule = make_rule(
        trigger="replenish", days="auto", max_lateness="1d", bought={"products": ["TEA-57"]}
    )
    # With every purchase known the median is 20: a's last (day 30) is due at 50, b's (35)
    # at 55, e's (40) at 60; c's (13.5) and d's (2) were due long ago and are never sent.
    for when in (day(50, 1), day(55, 1), day(60, 1)):
        shop.plan([rule], when)
    due = [(who, at) for _, who, _, at in shop.ledger()]
    assert due == [("a", day(50)), ("b", day(55)), ("e", day(60))]


def test_auto_days_without_any_reorder_sends_nothing(shop: ProductShop) -> None:
    shop.customer("ali")
    shop.order("ali", day(0), TEA)
    rule = make_rule(trigger="replenish", days="auto", bought={"categories": ["tea"]})
    for n in range(0, 400, 20):
        shop.plan([rule], day(n) + timedelta(hours=1))
    assert shop.ledger() == []


def test_racing_planners_plan_each_product_occurrence_once(shop: ProductShop) -> None:
    """Four planners at once (on PostgreSQL with their advisory locks, on SQLite one writer
    at a time): each cross-sell and refill occurrence is in the ledger exactly once."""
    cross_sell = make_rule(
        trigger="cross_sell",
        after="7d",
        max_lateness="1d",
        bought={"categories": ["teaware"]},
        suggest={"categories": ["coffee"]},
    )
    names = [f"c{n}" for n in range(12)]
    for name in names:
        shop.customer(name)
        shop.order(name, day(0), TEA, POT)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            for when in (day(7, 1), day(30, 1)):
                shop.plan([cross_sell, RULE], when)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rows = [(rule, who) for rule, who, _, _ in shop.ledger()]
    assert sorted(rows) == sorted(
        [("cross_sell", n) for n in names] + [("replenish", n) for n in names]
    )
