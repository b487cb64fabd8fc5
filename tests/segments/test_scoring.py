"""RFM scores and segments on a hand-computed shop of 20 paying customers, on SQLite and
PostgreSQL; recomputing after a batch gives exactly what recomputing everything gives."""

from __future__ import annotations

import shutil
import threading
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.config import CustomerDefaults
from campaigner.customers.loader import load_orders, refresh_customer_stats
from campaigner.db import create_engine_for
from campaigner.db.models import ORDERS_BY_CUSTOMER, Customer, CustomerScore, Order, SegmentChange
from campaigner.segments import SegmentMap, recompute, refresh_inputs, rescore
from campaigner.segments.daily import daily
from campaigner.segments.scoring import payer_inputs

MAIN = "IRT"
# customer: (days since the last paid order, paid orders, currency, spend net of refunds)
SHOP: dict[str, tuple[int, int, str, int]] = {
    "c01": (400, 1, "IRT", 10),
    "c02": (400, 1, "IRT", 20),  # same last day as c01: same recency score
    "c03": (350, 1, "IRT", 30),
    "c04": (300, 2, "IRT", 40),
    "c05": (250, 1, "IRT", 50),
    "c06": (200, 3, "IRT", 60),
    "c07": (180, 1, "IRT", 70),
    "c08": (150, 1, "IRT", 80),
    "c09": (120, 2, "IRT", 90),
    "c10": (100, 4, "IRT", 100),
    "c11": (90, 1, "IRT", 110),
    "c12": (80, 5, "IRT", 120),
    "c13": (60, 1, "IRT", 130),
    "c14": (50, 2, "IRT", 140),
    "c15": (40, 1, "IRT", 150),
    "c16": (30, 6, "IRT", 60),  # 160 paid, 100 refunded: ties c06 on spend
    "c17": (20, 1, "USD", 5),
    "c18": (10, 2, "USD", 7),
    "c19": (5, 3, "USD", 5),  # ties c17 within USD
    "c20": (1, 2, "MIX", 25),  # 25 IRT and 100 USD: valued in IRT, 25
}

# Worked by hand. N = 20 customers with a paid order; NTILE(5) gives positions 1-4 tile 1,
# 5-8 tile 2, ... 17-20 tile 5, ordered by the input then id; ties take their lowest tile.
#  R: by last day, oldest first (c01 and c02 share day -400: positions 1, 2).
#  F: ten customers with one order hold positions 1-10 (tiles 1,1,1,1,2,2,2,2,3,3) -> all 1;
#     five with two orders hold 11-15 (tiles 3,3,4,4,4) -> all 3; c06, c19 with three hold 16,
#     17 (tiles 4, 5) -> 4; 4, 5 and 6 orders -> 5.
#  M: within IRT (17 customers: tiles of 4,4,3,3,3): c01 c02 c20 c03 -> 1; c04 c05 c06 c16
#     -> 2; c07 c08 c09 -> 3; c10 c11 c12 -> 4; c13 c14 c15 -> 5. Within USD (3 customers:
#     tiles 1, 2, 3): c17 and c19 tie on 5 -> 1, c18 -> 3.
EXPECTED: dict[str, tuple[int | None, int | None, int | None, str]] = {
    "c01": (1, 1, 1, "lost"),
    "c02": (1, 1, 1, "lost"),
    "c03": (1, 1, 1, "lost"),
    "c04": (1, 3, 2, "at_risk"),
    "c05": (2, 1, 2, "hibernating"),
    "c06": (2, 4, 2, "at_risk"),
    "c07": (2, 1, 3, "hibernating"),
    "c08": (2, 1, 3, "hibernating"),
    "c09": (3, 3, 3, "needs_attention"),
    "c10": (3, 5, 4, "loyal"),
    "c11": (3, 1, 4, "about_to_sleep"),
    "c12": (3, 5, 4, "loyal"),
    "c13": (4, 1, 5, "promising"),
    "c14": (4, 3, 5, "potential_loyalist"),
    "c15": (4, 1, 5, "promising"),
    "c16": (4, 5, 2, "loyal"),
    "c17": (5, 1, 1, "new"),
    "c18": (5, 3, 3, "potential_loyalist"),
    "c19": (5, 4, 1, "champions"),
    "c20": (5, 3, 1, "potential_loyalist"),
    # A fully refunded order and an unpaid one are no paid orders.
    "refunded": (None, None, None, "none"),
    "pending": (None, None, None, "none"),
}


def build_shop(session: Session, clock: FixedClock) -> None:
    now = clock.now()
    for external_id, (days, count, currency, spent) in SHOP.items():
        customer = Customer(external_id=external_id, phone=f"+98912{external_id[1:]:0>7}")
        session.add(customer)
        session.flush()
        refund = 100 if external_id == "c16" else 0
        for n in range(count):
            last = n == count - 1
            total = Decimal(spent - (count - 1) + refund) if last else Decimal(1)
            order_currency = currency
            if currency == "MIX":
                order_currency, total = ("IRT", Decimal(spent)) if last else ("USD", Decimal(100))
            session.add(
                Order(
                    external_id=f"{external_id}-o{n}",
                    customer_id=customer.id,
                    total=total,
                    refunded=Decimal(refund) if last else Decimal(0),
                    currency=order_currency,
                    paid_at=now - timedelta(days=days + 10 * (count - 1 - n), hours=n),
                )
            )
    for external_id, status in (("refunded", "refunded"), ("pending", "pending")):
        customer = Customer(external_id=external_id)
        session.add(customer)
        session.flush()
        paid_at = now - timedelta(days=3) if status == "refunded" else None
        session.add(
            Order(
                external_id=f"{external_id}-o",
                customer_id=customer.id,
                total=Decimal(50),
                refunded=Decimal(50) if status == "refunded" else Decimal(0),
                status=status,
                paid_at=paid_at,
            )
        )
    session.flush()
    refresh_customer_stats(session, session.scalars(select(Customer.id)).all())


def segments_of(session: Session) -> dict[str, tuple[Any, ...]]:
    rows = session.execute(
        select(
            Customer.external_id,
            CustomerScore.recency_score,
            CustomerScore.frequency_score,
            CustomerScore.monetary_score,
            Customer.segment,
        ).outerjoin(CustomerScore, CustomerScore.customer_id == Customer.id)
    )
    return {row[0]: tuple(row[1:]) for row in rows}


def inputs_of(session: Session, external_id: str) -> CustomerScore:
    return session.scalars(
        select(CustomerScore).join(Customer).where(Customer.external_id == external_id)
    ).one()


def test_scores_and_segments_of_a_hand_computed_shop(
    sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    with sessions.begin() as session:
        build_shop(session, clock)
        result = recompute(session, SegmentMap.standard(), clock.now(), MAIN)
    with sessions.begin() as session:
        assert segments_of(session) == EXPECTED
        assert (inputs_of(session, "c20").currency, inputs_of(session, "c18").currency) == (
            "IRT",
            "USD",
        )
        assert inputs_of(session, "c20").spent == Decimal(25)
        assert (inputs_of(session, "c16").orders, inputs_of(session, "c16").spent) == (6, 60)
        # A first placement is a move only after a recent first order (ARRIVAL_WINDOW): none.
        assert session.scalars(select(SegmentChange.id)).all() == []
    assert (result.scored, result.changed, result.placed) == (20, 0, 20)


@pytest.mark.parametrize("afresh", [True, False])
def test_an_order_without_a_currency_counts_in_the_main_one(
    sessions: sessionmaker[Session], clock: FixedClock, afresh: bool
) -> None:
    """'' is the main currency: next to the main one it is one currency, next to another
    it is two; three currencies, or two without the main one, are valued in the main one."""
    # customer: the currencies of their orders of 10 each; what they are valued in, and spend
    blank = {
        "b1": (["", MAIN], MAIN, 20),
        "b2": (["", "USD"], MAIN, 10),
        "b3": ([""], MAIN, 10),
        "b4": (["", "", MAIN], MAIN, 30),
        "b5": (["USD", "USD"], "USD", 20),
        "b6": (["", "AED", "USD"], MAIN, 10),  # three, the lowest and highest not the main
        "b7": ([MAIN, "AED", "USD"], MAIN, 10),
        "b8": (["AED", "USD"], MAIN, 0),  # two, neither the main: nothing in it
        "b9": (["", MAIN, "USD"], MAIN, 20),
    }
    with sessions.begin() as session:
        for external_id, (currencies, _, _) in blank.items():
            customer = Customer(external_id=external_id)
            session.add(customer)
            session.flush()
            for n, currency in enumerate(currencies):
                session.add(
                    Order(
                        external_id=f"{external_id}-o{n}",
                        customer_id=customer.id,
                        total=Decimal(10),
                        currency=currency,
                        paid_at=clock.now() - timedelta(days=n + 1),
                    )
                )
        session.flush()
        recompute(session, SegmentMap.standard(), clock.now(), MAIN, None, afresh=afresh)
    with sessions.begin() as session:
        for external_id, (_, currency, spent) in blank.items():
            row = inputs_of(session, external_id)
            assert (row.currency, row.spent) == (currency, Decimal(spent)), external_id


def test_rescoring_never_writes_the_customers_own_row(
    sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    """Scores live in customer_scores: a customer's `updated_at` keeps saying when the
    customer's data last changed, even when every segment moved."""
    with sessions.begin() as session:
        build_shop(session, clock)
    with sessions() as session:
        before = dict(session.execute(select(Customer.id, Customer.updated_at)).all())
    with sessions.begin() as session:
        result = recompute(session, SegmentMap.standard(), clock.now(), MAIN)
    with sessions() as session:
        after = dict(session.execute(select(Customer.id, Customer.updated_at)).all())
        stamped = set(session.scalars(select(CustomerScore.scored_at)))
    assert result.scored == 20
    assert after == before
    assert stamped == {clock.now()}  # when the scores moved, on the scores


def test_recomputing_unchanged_data_writes_nothing(
    sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    with sessions.begin() as session:
        build_shop(session, clock)
        recompute(session, SegmentMap.standard(), clock.now(), MAIN)
    with sessions.begin() as session:
        again = recompute(session, SegmentMap.standard(), clock.now(), MAIN)
    assert (again.scored, again.changed) == (0, 0)


def test_after_a_batch_equals_recomputing_everything(
    sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    """A batch touching three customers moves the quintile boundaries for others too: the
    incremental pass must write those others, exactly as a full pass would."""
    segment_map = SegmentMap.standard()
    with sessions.begin() as session:
        build_shop(session, clock)
        recompute(session, segment_map, clock.now(), MAIN)
    clock.advance(timedelta(days=1))
    batch = [
        {"external_id": "n1", "customer_id": "c01", "total": "500", "paid_at": clock.now()},
        {"external_id": "n2", "customer_id": "c05", "total": "30", "currency": "USD",
         "paid_at": clock.now()},
        {"external_id": "n3", "customer_id": "pending", "total": "80", "paid_at": clock.now()},
    ]  # fmt: skip
    with sessions.begin() as session:
        load_orders(session, batch, CustomerDefaults(), now=clock.now())
        touched = session.scalars(
            select(Customer.id).where(Customer.external_id.in_(["c01", "c05", "pending"]))
        ).all()
        recompute(session, segment_map, clock.now(), MAIN, list(touched))
    with sessions.begin() as session:
        incremental = segments_of(session)
        session.execute(delete(CustomerScore))
    with sessions.begin() as session:
        recompute(session, segment_map, clock.now(), MAIN)
    with sessions.begin() as session:
        full = segments_of(session)
    assert incremental == full
    assert incremental["pending"][3] != "none"  # the first paid order gave a segment
    moved_untouched = {
        key
        for key in EXPECTED
        if key not in ("c01", "c05", "pending") and full[key] != EXPECTED[key]
    }
    assert moved_untouched  # the batch did move customers it never touched


@pytest.mark.parametrize(
    ("patterns", "message"),
    [
        ({"champions": ["55"]}, "belong to no segment"),
        ({"vips": ["[1-5][1-5]"]}, "unknown segment 'vips'"),
        ({"loyal": ["[1-5][1-5]"], "lost": ["11"]}, "is in both loyal and lost"),
        ({"loyal": ["6[1-2]"]}, "no cell pattern"),
        ({"loyal": ["[5-1][1-5]"]}, "runs backwards"),
    ],
)
def test_a_bad_map_is_refused_with_its_reason(patterns: dict[str, list[str]], message: str) -> None:
    from campaigner.segments import MapError

    with pytest.raises(MapError, match=message):
        SegmentMap.parse(patterns)


def test_a_map_given_whole_replaces_the_standard_one() -> None:
    custom = SegmentMap.parse({"champions": ["[4-5][1-5]"], "hibernating": ["[1-3][1-5]"]})
    assert custom.segment(4, 1) == "champions"
    assert custom.segment(3, 5) == "hibernating"


def test_a_customer_whose_only_order_is_refunded_goes_back_to_none(
    sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    with sessions.begin() as session:
        build_shop(session, clock)
        recompute(session, SegmentMap.standard(), clock.now(), MAIN)
    with sessions.begin() as session:
        c17 = session.scalars(select(Customer).where(Customer.external_id == "c17")).one()
        session.execute(update(Order).where(Order.customer_id == c17.id).values(status="refunded"))
        refresh_customer_stats(session, [c17.id], main_currency=MAIN)
        result = rescore(session, SegmentMap.standard(), clock.now())
    with sessions() as session:
        after = session.get_one(Customer, c17.id)
        scores = session.get(CustomerScore, c17.id)
        moves = session.execute(
            select(SegmentChange.old, SegmentChange.new).where(
                SegmentChange.customer_id == c17.id, SegmentChange.old != "none"
            )
        ).all()
    assert (after.segment, scores) == ("none", None)  # no paid order: no scores row
    assert [tuple(move) for move in moves] == [("new", "none")]
    assert result.changed >= 1


def history_of(session: Session, external_id: str) -> list[tuple[str, str]]:
    moves = session.execute(
        select(SegmentChange.old, SegmentChange.new)
        .join(Customer, Customer.id == SegmentChange.customer_id)
        .where(Customer.external_id == external_id)
        .order_by(SegmentChange.changed_at, SegmentChange.id)
    )
    return [(old, new) for old, new in moves]


@pytest.mark.parametrize("ranked_by", ["loader", "daily"])
def test_a_customer_back_from_none_returns_where_they_were_never_as_a_newcomer(
    sessions: sessionmaker[Session], clock: FixedClock, ranked_by: str
) -> None:
    """Regression: a customer whose paid orders were all refunded went back to none, and
    their next order recorded none -> new again: a welcome rule greeted them twice. Placed
    before, they come back to the segment they left, a move only if it is another."""
    segment_map = SegmentMap.standard()
    with sessions.begin() as session:
        build_shop(session, clock)
        daily(session, segment_map, clock.now(), MAIN)  # the shop's first pass: quiet
    clock.advance(timedelta(days=1))
    with sessions.begin() as session:  # c17 ("new") and c18 (two orders) refunded
        refunded = session.scalars(
            select(Customer.id).where(Customer.external_id.in_(["c17", "c18"]))
        ).all()
        session.execute(
            update(Order).where(Order.customer_id.in_(refunded)).values(status="refunded")
        )
        refresh_customer_stats(session, refunded, main_currency=MAIN)
        rescore(session, segment_map, clock.now())
    clock.advance(timedelta(days=40))
    batch = [
        {"external_id": f"{name}-back", "customer_id": name, "total": "9", "paid_at": clock.now()}
        for name in ("c17", "c18")
    ]
    with sessions.begin() as session:
        if ranked_by == "loader":
            load_orders(
                session, batch, CustomerDefaults(), now=clock.now(), segment_map=segment_map
            )
        else:  # written without ranking: the daily pass reads the changed orders
            load_orders(session, batch, CustomerDefaults(), now=clock.now())
            daily(session, segment_map, clock.now(), MAIN)
    with sessions() as session:
        assert session.scalars(select(Customer.segment).where(Customer.id.in_(refunded))).all() == [
            "new",
            "new",
        ]
        assert history_of(session, "c17") == [("new", "none")]
        assert history_of(session, "c18") == [
            ("potential_loyalist", "none"),
            ("potential_loyalist", "new"),
        ]


def test_two_rescoring_passes_at_once_record_each_move_once(
    sessions: sessionmaker[Session], clock: FixedClock, db_url: str
) -> None:
    """The daemon's daily pass and an import finishing at the same moment: on PostgreSQL the
    second waits for the first (advisory lock), then finds nothing left to write; SQLite
    serialises writers by itself."""
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE): this race needs PostgreSQL")
    with sessions.begin() as session:
        build_shop(session, clock)
        refresh_inputs(session, None, MAIN)
        # Every payer a new customer of today's: each placement is a move to record once.
        session.execute(update(CustomerScore).values(first_paid_at=clock.now()))
    barrier = threading.Barrier(2)
    results: list[int] = []

    def rescoring() -> None:
        with sessions.begin() as session:
            session.execute(select(1))
            barrier.wait(timeout=30)
            results.append(rescore(session, SegmentMap.standard(), clock.now()).changed)

    threads = [threading.Thread(target=rescoring) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    with sessions() as session:
        history = session.scalars(select(SegmentChange.customer_id)).all()
    assert sorted(results) == [0, 20]
    assert len(history) == len(set(history)) == 20


def test_everybodys_inputs_are_grouped_along_the_orders_index_on_sqlite(
    tmp_path: Path, sqlite_template: Path
) -> None:
    """A shop's first pass reads the paid orders along the orders' index per customer, which
    holds every column it reads: no sort of the orders, no look-up of each in the table."""
    path = tmp_path / "plan.db"
    shutil.copyfile(sqlite_template, path)
    engine = create_engine_for(f"sqlite:///{path}")
    try:
        statement = payer_inputs(None, MAIN).compile(engine, compile_kwargs={"literal_binds": True})
        with engine.connect() as connection:
            plan = [
                str(row[-1])
                for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}")
            ]
    finally:
        engine.dispose()
    index = "ix_orders_" + "_".join(ORDERS_BY_CUSTOMER)
    assert any(f"USING COVERING INDEX {index}" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan
