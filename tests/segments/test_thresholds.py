"""Ranking by thresholds gives exactly NTILE(5) with ties taking their lowest tile: checked
against a reference computed in Python on shops built to be awkward (ties everywhere, one
currency and two, negative and zero spend, fewer than five payers, everybody tied), on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.db.models import Customer, CustomerScore
from campaigner.segments import SegmentMap, rescore
from campaigner.segments.scoring import tile_ends

# A payer's inputs: (last payment, paid orders, currency, spend).
Inputs = tuple[datetime, int, str, Decimal]


def ntile_lowest(values: dict[int, Any]) -> dict[int, int]:
    """NTILE(5) over (value, id), then every tie group takes its lowest tile: the tile of the
    group's first position. Written the slow, obvious way."""
    ordered = sorted(values, key=lambda c: (values[c], c))
    size, extra = divmod(len(ordered), 5)
    tile_of_position: list[int] = []
    for tile in range(1, 6):
        tile_of_position += [tile] * (size + (1 if tile <= extra else 0))
    first: dict[Any, int] = {}
    for position, customer in enumerate(ordered):
        first.setdefault(values[customer], tile_of_position[position])
    return {customer: first[values[customer]] for customer in ordered}


def expected_scores(shop: dict[int, Inputs]) -> dict[int, tuple[int, int, int, str]]:
    recency = ntile_lowest({c: last.date() for c, (last, _, _, _) in shop.items()})
    frequency = ntile_lowest({c: count for c, (_, count, _, _) in shop.items()})
    monetary: dict[int, int] = {}
    for currency in {currency for _, _, currency, _ in shop.values()}:
        monetary.update(
            ntile_lowest({c: spent for c, (_, _, code, spent) in shop.items() if code == currency})
        )
    segment_map = SegmentMap.standard()
    return {
        c: (recency[c], frequency[c], monetary[c], segment_map.segment(recency[c], frequency[c]))
        for c in shop
    }


def store(session: Session, shop: list[Inputs]) -> dict[int, Inputs]:
    """These inputs stored as they are, a customer each; returns them by customer id."""
    ids: dict[int, Inputs] = {}
    for n, inputs in enumerate(shop):
        customer = Customer(external_id=f"t{n}")
        session.add(customer)
        session.flush()
        last, count, currency, spent = inputs
        session.add(
            CustomerScore(
                customer_id=customer.id,
                orders=count,
                last_paid_at=last,
                currency=currency,
                spent=spent,
            )
        )
        ids[customer.id] = inputs
    session.flush()
    return ids


def scored(sessions: sessionmaker[Session], shop: list[Inputs], now: datetime) -> dict[int, Any]:
    """Store these inputs as they are, rank, and return (expected, stored) by customer."""
    with sessions.begin() as session:
        ids = store(session, shop)
        result = rescore(session, SegmentMap.standard(), now)
        assert result.changed + result.placed == len(shop)  # moved, or placed quietly
    with sessions() as session:
        rows = session.execute(
            select(
                CustomerScore.customer_id,
                CustomerScore.recency_score,
                CustomerScore.frequency_score,
                CustomerScore.monetary_score,
                CustomerScore.segment,
            )
        )
        stored = {row[0]: tuple(row[1:]) for row in rows}
    return {"expected": expected_scores(ids), "stored": stored}


def test_tile_ends_are_where_ntile_changes_tile() -> None:
    for count in range(1, 40):
        tiles = ntile_lowest({n: n for n in range(count)})  # distinct values: plain NTILE
        assert [sum(1 for t in tiles.values() if t <= k) for k in range(1, 5)] == tile_ends(count)


def awkward_shop(count: int, now: datetime) -> list[Inputs]:
    """Few distinct values, so nearly every threshold falls inside a tie group: days that
    differ by hours only, 1-3 orders, spend with cents, zero and negative."""
    shop: list[Inputs] = []
    for n in range(count):
        h = (n * 7919 + 13) % 1009
        last = now - timedelta(days=h % 9, hours=(h * 5) % 20)
        spent = Decimal(h % 11 - 3) + Decimal("0.10") * (h % 3)
        shop.append((last, 1 + h % 3, "USD" if h % 4 == 0 else "IRT", spent))
    return shop


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 6, 9, 23, 137])
def test_thresholds_match_ntile_on_ties_and_two_currencies(
    sessions: sessionmaker[Session], clock: FixedClock, count: int
) -> None:
    result = scored(sessions, awkward_shop(count, clock.now()), clock.now())
    assert result["stored"] == result["expected"]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 8])
def test_a_shop_where_everybody_ties_scores_everybody_one(
    sessions: sessionmaker[Session], clock: FixedClock, count: int
) -> None:
    same = (clock.now() - timedelta(days=3), 2, "IRT", Decimal("12.30"))
    result = scored(sessions, [same] * count, clock.now())
    assert set(result["stored"].values()) == {(1, 1, 1, "lost")}
    assert result["stored"] == result["expected"]


def test_fewer_than_five_distinct_payers_use_the_low_tiles(
    sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    now = clock.now()
    shop = [(now - timedelta(days=d), d, "IRT", Decimal(-d)) for d in (3, 2, 1)]
    result = scored(sessions, shop, now)
    # Three payers take tiles 1, 2 and 3; nobody reaches 4 or 5.
    assert sorted(result["stored"].values()) == [
        (1, 3, 1, "at_risk"),  # oldest, most orders, least spend (-3)
        (2, 2, 2, "hibernating"),
        (3, 1, 3, "about_to_sleep"),
    ]
    assert result["stored"] == result["expected"]


def test_negative_zero_and_one_currency_spend(
    sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    now = clock.now()
    spends = ["-5.00", "-5.00", "0", "0", "0", "0.01", "0.01", "7.50", "-0.01", "100"]
    shop = [(now, 1, "IRT", Decimal(spent)) for spent in spends]
    result = scored(sessions, shop, now)
    assert result["stored"] == result["expected"]
    assert sorted(m for _, _, m, _ in result["stored"].values()) == [1, 1, 2, 2, 2, 2, 4, 4, 5, 5]
