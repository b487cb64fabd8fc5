"""refresh_customer_stats against a plain Python reference, on both databases."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from campaigner.customers.loader import STATS_CHUNK, refresh_customer_stats
from campaigner.db.models import Customer, Order

START = datetime(2026, 1, 1, tzinfo=UTC)
LATER = datetime(2026, 6, 1, tzinfo=UTC)


def add_customers(session: Session, count: int) -> list[int]:
    rows = [
        {"external_id": f"c{n}", "created_at": START, "updated_at": START} for n in range(count)
    ]
    session.execute(insert(Customer), rows)
    return list(session.scalars(select(Customer.id).order_by(Customer.id)))


def random_orders(rng: random.Random, customer_ids: list[int], count: int) -> list[dict[str, Any]]:
    """Paid, refunded and pending orders, some without a payment time, many sharing one."""
    instants = [START + timedelta(hours=rng.randrange(40)) for _ in range(12)]
    return [
        {
            "external_id": f"o{n}",
            "customer_id": rng.choice(customer_ids),
            "total": Decimal(rng.randrange(1, 10_000)) / 100,
            "status": rng.choice(["paid", "paid", "paid", "refunded", "pending"]),
            "paid_at": rng.choice([*instants, None]),
            "created_at": START,
            "updated_at": START,
        }
        for n in range(count)
    ]


def expected(session: Session, customer_ids: list[int]) -> tuple[dict[int, Any], dict[int, Any]]:
    """Statistics and sequences computed in Python from the orders as they are now."""
    orders = session.execute(
        select(Order.id, Order.customer_id, Order.status, Order.paid_at, Order.total)
    ).all()
    stats: dict[int, Any] = {}
    sequences: dict[int, Any] = {order.id: None for order in orders}
    for customer_id in customer_ids:
        paid = sorted(
            (
                o
                for o in orders
                if o.customer_id == customer_id and o.status == "paid" and o.paid_at
            ),
            key=lambda o: (o.paid_at, o.id),
        )
        for position, order in enumerate(paid, start=1):
            sequences[order.id] = position
        stats[customer_id] = (
            len(paid),
            sum((o.total for o in paid), Decimal(0)),
            paid[0].paid_at if paid else None,
            paid[-1].paid_at if paid else None,
            paid[-1].id if paid else None,
        )
    return stats, sequences


def actual(session: Session) -> tuple[dict[int, Any], dict[int, Any]]:
    columns = (
        Customer.orders_count,
        Customer.total_spent,
        Customer.first_order_at,
        Customer.last_order_at,
        Customer.last_order_id,
    )
    stats = {row[0]: tuple(row[1:]) for row in session.execute(select(Customer.id, *columns))}
    sequences = {row[0]: row[1] for row in session.execute(select(Order.id, Order.sequence))}
    return stats, sequences


def test_statistics_and_sequences_match_a_python_reference(
    sessions: sessionmaker[Session],
) -> None:
    rng = random.Random(7)
    with sessions.begin() as session:
        customer_ids = add_customers(session, 40)
        session.execute(insert(Order), random_orders(rng, customer_ids[:35], 400))
        refresh_customer_stats(session, customer_ids)
    with sessions() as session:
        assert actual(session) == expected(session, customer_ids)

    # Refunds, new payment times and a customer whose every order stops counting.
    with sessions.begin() as session:
        order_ids = list(session.scalars(select(Order.id)))
        for order_id in rng.sample(order_ids, 60):
            new = rng.choice([{"status": "refunded"}, {"status": "paid"}, {"paid_at": LATER}])
            session.execute(update(Order).where(Order.id == order_id).values(new))
        session.execute(
            update(Order).where(Order.customer_id == customer_ids[0]).values(status="cancelled")
        )
        refresh_customer_stats(session, customer_ids)
    with sessions() as session:
        stats, sequences = actual(session)
        assert (stats, sequences) == expected(session, customer_ids)
        assert stats[customer_ids[0]] == (0, Decimal(0), None, None, None)


def test_only_customers_asked_for_are_refreshed(sessions: sessionmaker[Session]) -> None:
    rng = random.Random(11)
    with sessions.begin() as session:
        customer_ids = add_customers(session, 10)
        session.execute(insert(Order), random_orders(rng, customer_ids, 80))
        refresh_customer_stats(session, customer_ids[:5])
    with sessions() as session:
        stats, sequences = actual(session)
        want_stats, want_sequences = expected(session, customer_ids[:5])
        assert {c: stats[c] for c in customer_ids[:5]} == want_stats
        assert all(stats[c] == (0, Decimal(0), None, None, None) for c in customer_ids[5:])
        others = session.scalars(select(Order.id).where(Order.customer_id.in_(customer_ids[5:])))
        assert all(sequences[order_id] is None for order_id in others)
        mine = session.scalars(select(Order.id).where(Order.customer_id.in_(customer_ids[:5])))
        assert all(sequences[order_id] == want_sequences[order_id] for order_id in mine)


def test_rows_whose_figures_did_not_change_keep_their_updated_at(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        first, second = add_customers(session, 2)
        session.execute(
            insert(Order),
            [
                {"external_id": external_id, "customer_id": customer_id, "total": Decimal(10)}
                | {"status": "paid", "paid_at": START + timedelta(days=n)}
                | {"created_at": START, "updated_at": START}
                for n, (external_id, customer_id) in enumerate(
                    [("a1", first), ("a2", first), ("b1", second)]
                )
            ],
        )
        refresh_customer_stats(session, [first, second])
        session.execute(
            update(Order).values(updated_at=START).execution_options(synchronize_session=False)
        )
        session.execute(update(Customer).values(updated_at=START))
    with sessions.begin() as session:
        late = {"external_id": "b0", "customer_id": second, "total": Decimal(5)}
        session.execute(
            insert(Order),
            [late | {"status": "paid", "paid_at": START - timedelta(days=1)}],
        )
        refresh_customer_stats(session, [first, second])
    with sessions() as session:
        touched = {
            external_id
            for external_id, updated_at in session.execute(
                select(Order.external_id, Order.updated_at)
            )
            if updated_at != START
        }
        assert touched == {"b0", "b1"}  # b1 became the second order; a1 and a2 kept theirs
        customers = {
            row[0]: row[1] for row in session.execute(select(Customer.id, Customer.updated_at))
        }
        assert customers[first] == START
        assert customers[second] != START
        b1 = session.scalars(select(Order.sequence).where(Order.external_id == "b1")).one()
        assert b1 == 2


def test_more_customers_than_one_chunk(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        customer_ids = add_customers(session, STATS_CHUNK + 3)
        session.execute(
            insert(Order),
            [
                {"external_id": f"o{customer_id}", "customer_id": customer_id}
                | {"total": Decimal(1), "status": "paid", "paid_at": START}
                | {"created_at": START, "updated_at": START}
                for customer_id in customer_ids
            ],
        )
        refresh_customer_stats(session, reversed(customer_ids))
    with sessions() as session:
        counts = set(session.scalars(select(Customer.orders_count)))
        sequences = set(session.scalars(select(Order.sequence)))
        assert counts == {1}
        assert sequences == {1}
