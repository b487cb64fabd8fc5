"""Orders with their buyer inline (guests), line items and refunds, through the one loader."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.config import CustomerDefaults
from campaigner.customers.loader import load_customers, load_orders
from campaigner.db.models import (
    Customer,
    CustomerScore,
    Message,
    Order,
    OrderItem,
    SegmentChange,
)
from campaigner.segments import SegmentMap
from campaigner.segments.daily import daily
from campaigner.segments.scoring import rescore

NOW = datetime(2026, 3, 1, tzinfo=UTC)
DEFAULTS = CustomerDefaults()


def guest_order(order_id: str, phone: str, **extra: Any) -> dict[str, Any]:
    return {
        "external_id": order_id,
        "total": "1500000",
        "status": "paid",
        "paid_at": "2026-02-20T10:00:00+00:00",
        "customer": {"first_name": "مریم", "last_name": "کاظمی", "phone": phone},
        **extra,
    }


def test_a_guest_becomes_a_customer_known_by_phone(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        result = load_orders(session, [guest_order("7001", "۰۹۱۲۱۱۱۲۲۳۳")], DEFAULTS, now=NOW)
        assert result.errors == [] and result.inserted == 1
        second = load_orders(session, [guest_order("7002", "+989121112233")], DEFAULTS, now=NOW)
        assert second.errors == []
    with sessions() as session:
        guest = session.scalars(select(Customer)).one()
    assert guest.external_id == "guest:+989121112233"
    assert (guest.first_name, guest.orders_count) == ("مریم", 2)


def test_a_guest_who_registers_is_one_customer(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        load_orders(session, [guest_order("7001", "09121112233")], DEFAULTS, now=NOW)
        guest = session.scalars(select(Customer)).one()
        session.add(
            Message(
                rule="thanks",
                customer_id=guest.id,
                occurrence_key="1",
                due_at=NOW,
                scheduled_for=NOW,
            )
        )
    with sessions.begin() as session:
        registered = {"external_id": "42", "first_name": "Maryam", "phone": "09121112233"}
        assert load_customers(session, [registered], DEFAULTS, now=NOW).errors == []
        # A later guest checkout with the same phone is the registered customer's order.
        load_orders(session, [guest_order("7003", "09121112233")], DEFAULTS, now=NOW)
    with sessions() as session:
        customers = session.scalars(select(Customer)).all()
        assert [c.external_id for c in customers] == ["42"]
        assert customers[0].orders_count == 2
        assert session.scalars(select(Message.customer_id)).one() == customers[0].id


def test_a_guest_order_without_a_usable_phone_is_rejected(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        result = load_orders(
            session,
            [guest_order("1", ""), guest_order("2", "12"), guest_order("3", "09121112233")],
            DEFAULTS,
            now=NOW,
        )
    assert [(e.index, e.field) for e in result.errors] == [
        (0, "customer.phone"),
        (1, "customer.phone"),
    ]
    assert result.inserted == 1


def test_items_replace_the_old_ones_and_refunds_reduce_revenue(
    sessions: sessionmaker[Session],
) -> None:
    items = [
        {
            "name": "چای  ماسالا",
            "quantity": 2,
            "line_total": "400000",
            "categories": ["چای", "Tea"],
        },
        {"product_id": 57, "sku": "MUG-1", "name": "Mug", "quantity": "1", "line_total": 100000},
    ]
    with sessions.begin() as session:
        result = load_orders(
            session, [guest_order("7001", "09121112233", items=items)], DEFAULTS, now=NOW
        )
        assert result.errors == []
    with sessions.begin() as session:
        later = guest_order("7001", "09121112233", items=items[1:], refunded="400000")
        assert load_orders(session, [later], DEFAULTS, now=NOW).errors == []
        # Loaded without items: the order keeps the ones it has.
        assert load_orders(session, [{**later, "items": None}], DEFAULTS, now=NOW).errors == []
    with sessions() as session:
        rows = session.scalars(select(OrderItem)).all()
        order = session.scalars(select(Order)).one()
        customer = session.scalars(select(Customer)).one()
    assert [(i.line_no, i.name, i.sku, i.product_id) for i in rows] == [(1, "Mug", "MUG-1", "57")]
    assert order.refunded == Decimal(400000)
    assert customer.total_spent == Decimal(1100000)


def test_items_keep_persian_names_and_categories(sessions: sessionmaker[Session]) -> None:
    items = [
        {"name": "چای  ماسالا", "quantity": 2, "line_total": "400000", "categories": ["چاي", "Tea"]}
    ]
    with sessions.begin() as session:
        load_orders(session, [guest_order("7001", "09121112233", items=items)], DEFAULTS, now=NOW)
    with sessions() as session:
        item = session.scalars(select(OrderItem)).one()
        rows = [row.category for row in item.category_rows]
    # Categories are folded (Arabic ي as Persian ی, lower case) and sorted, whatever order the
    # shop gave: the first in alphabetical order is an item's `category`.
    assert (item.name, item.categories, item.quantity) == ("چای ماسالا", ",tea,چای,", 2)
    assert sorted(rows) == ["tea", "چای"]


def test_bad_items_and_refunds_reject_the_order(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        result = load_orders(
            session,
            [
                guest_order("1", "09121112233", items=[{"name": "x", "quantity": "lots"}]),
                guest_order("2", "09121112233", refunded="9999999"),
            ],
            DEFAULTS,
            now=NOW,
        )
    assert [(e.index, e.field) for e in result.errors] == [
        (0, "items.0.quantity"),
        (1, "refunded"),
    ]


def test_a_record_that_says_nothing_about_consent_keeps_it(
    sessions: sessionmaker[Session],
) -> None:
    # A shop's order names its buyer without a word on consent: that must not take back the
    # consent given elsewhere, nor give any to a new customer.
    def consents() -> dict[str, bool]:
        with sessions() as session:
            rows = session.execute(select(Customer.external_id, Customer.marketing_consent))
            return {external_id: consent for external_id, consent in rows}

    with sessions.begin() as session:
        given = {"external_id": "42", "phone": "09121112233", "marketing_consent": "yes"}
        assert load_customers(session, [given], DEFAULTS, now=NOW).errors == []
        unsaid = {"external_id": "42", "first_name": "علی", "phone": "09121112233"}
        stranger = {"external_id": "43", "phone": "09121112244"}
        result = load_customers(session, [unsaid, stranger], DEFAULTS, now=NOW)
        assert (result.errors, result.inserted, result.updated) == ([], 1, 1)
        buyer = {"external_id": "42", "first_name": "علی", "phone": "09121112233"}
        order = guest_order("7100", "", customer=buyer)
        assert load_orders(session, [order], DEFAULTS, now=NOW).errors == []
    assert consents() == {"42": True, "43": False}
    with sessions.begin() as session:
        said = {"external_id": "42", "phone": "09121112233", "marketing_consent": "no"}
        assert load_customers(session, [said], DEFAULTS, now=NOW).updated == 1
    assert consents() == {"42": False, "43": False}


def test_a_customer_may_spend_more_than_one_order_may_cost(
    sessions: sessionmaker[Session],
) -> None:
    """Two orders of 900 billion rials each: each fits an order's total, their sum did not
    fit the customer's total_spent, nor the value segments' spend (PostgreSQL refused the
    statistics: numeric overflow)."""
    orders = [{**guest_order(n, "09121112233"), "total": "900000000000"} for n in ("8001", "8002")]
    with sessions.begin() as session:
        result = load_orders(session, orders, DEFAULTS, now=NOW)
    assert not result.errors
    with sessions() as session:
        customer = session.scalars(select(Customer)).one()
        spent = session.scalars(select(CustomerScore.spent)).one()
    assert customer.total_spent == spent == Decimal("1800000000000")


def test_a_guest_who_registers_keeps_its_segment_without_a_move_from_none(
    sessions: sessionmaker[Session],
) -> None:
    """Regression: the guest's scores went with the guest, and the registered customer's
    first rescoring recorded none -> hibernating on the day of registering, 40 days after the guest
    had last bought: a win-back or welcome `segment_change` rule messaged a buyer for a move
    never made. The guest's history is the person's, and moves with them."""
    segments = SegmentMap.standard()
    with sessions.begin() as session:  # the daemon's pass at start, on a shop still empty
        daily(session, segments, NOW, DEFAULTS.currency)
    with sessions.begin() as session:
        load_customers(
            session,
            [
                {"external_id": f"c{n}", "phone": f"0912111110{n}", "marketing_consent": "yes"}
                for n in range(4)
            ],
            DEFAULTS,
            now=NOW,
        )
        bought = [
            {"external_id": f"o{n}-{k}", "customer_id": f"c{n}", "total": "10", "paid_at": NOW}
            for n in range(4)
            for k in range(n + 1)
        ]
        # The guest's first order is recent: its first placement is a move (ARRIVAL_WINDOW).
        old = [
            guest_order(f"g{k}", "09359999999", paid_at=NOW - timedelta(days=k)) for k in range(2)
        ]
        load_orders(session, bought + old, DEFAULTS, now=NOW, segment_map=segments)
        guest = session.scalars(
            select(Customer).where(Customer.external_id == "guest:+989359999999")
        ).one()
        guest_id, guest_segment = guest.id, guest.segment
        history = session.execute(select(SegmentChange.old, SegmentChange.new)).all()
    assert guest_segment == "hibernating" and ("none", "hibernating") in history
    later = NOW + timedelta(days=40)
    with sessions.begin() as session:
        registered = {"external_id": "reg-1", "phone": "09359999999", "marketing_consent": "yes"}
        load_customers(session, [registered], DEFAULTS, now=later)
        rescore(session, segments, later)
    with sessions() as session:
        owner = session.scalars(select(Customer).where(Customer.external_id == "reg-1")).one()
        assert owner.segment == "hibernating"
        since = select(SegmentChange.id).where(SegmentChange.changed_at > NOW)
        assert session.scalars(since).all() == []
        assert session.execute(select(SegmentChange.old, SegmentChange.new)).all() == history
        person = SegmentChange.customer_id.in_([guest_id, owner.id])
        moves = session.execute(select(SegmentChange.customer_id, SegmentChange.new).where(person))
        assert moves.all() == [(owner.id, "hibernating")]
