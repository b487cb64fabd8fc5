"""preview of the product rules: the message when due, and when it will be otherwise."""

from __future__ import annotations

import pytest
from product_shop import BEANS, POT, TEA, ProductShop, day, make_rule
from sqlalchemy.orm import Session, sessionmaker

from campaigner.config import Settings
from campaigner.preview import preview
from campaigner.rules.models import Audience

CROSS_SELL = make_rule(
    trigger="cross_sell",
    template="beans.j2",
    after="7d",
    transactional=True,
    bought={"categories": ["teaware"]},
    suggest={"products": ["BEAN-70"]},
    suggestion="beans",
)
REFILL = make_rule(
    trigger="replenish",
    template="refill.j2",
    days="auto",
    transactional=True,
    bought={"products": ["TEA-57"]},
)


@pytest.fixture
def shop(settings: Settings, sessions: sessionmaker[Session]) -> ProductShop:
    templates = settings.paths.templates
    templates.mkdir(parents=True)
    (templates / "beans.j2").write_text("{{ first_name }}: {{ suggestion }}?", encoding="utf-8")
    (templates / "refill.j2").write_text("{{ first_name }}: {{ product }}?", encoding="utf-8")
    shop = ProductShop(sessions, settings)
    for name in ("ali", "sara", "reza"):
        shop.customer(name)
    shop.order("ali", day(0), POT, TEA, external_id="A1")
    shop.order("sara", day(0), TEA, external_id="S1")
    shop.order("sara", day(10), TEA, BEANS, external_id="S2")
    return shop


def test_cross_sell_preview(
    shop: ProductShop, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    early = preview(settings, sessions, CROSS_SELL, day(3, 2), "ali")
    assert early.reasons == [
        "no occurrence due at this time (max_lateness 2d); next due 2026-01-08 08:00 UTC "
        "(after order A1, unless BEAN-70 is bought)"
    ]
    due = preview(settings, sessions, CROSS_SELL, day(7, 2), "ali")
    assert due.text == "Ali: beans?"
    never = preview(settings, sessions, CROSS_SELL, day(7, 2), "reza")
    assert never.reasons[0].endswith("has not bought categories teaware")


def test_replenish_preview_with_the_median(
    shop: ProductShop, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    # Sara bought tea 10 days apart: the median is 10 days.
    assert preview(settings, sessions, REFILL, day(10, 2), "ali").text == "Ali: Masala chai?"
    waiting = preview(settings, sessions, REFILL, day(12), "sara")
    assert waiting.reasons == [
        "no occurrence due at this time (max_lateness 2d); next due 2026-01-21 08:00 UTC "
        "(10 days after order S2, unless bought again)"
    ]


def test_preview_names_a_bought_audience_the_customer_is_not_in(
    shop: ProductShop, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    rule = CROSS_SELL.model_copy(
        update={"audience": Audience.model_validate({"bought_none": {"categories": ["Tea"]}})}
    )
    assert preview(settings, sessions, rule, day(7, 2), "ali").reasons == [
        "not in the audience: bought_none categories tea"
    ]
