"""A paid order whose shop sent no payment time is paid when Campaigner first saw it paid.

WooCommerce leaves the payment date empty for some gateways, and its records then carry the
order's creation time, marked `PAID_AT_IS_CREATION`. A pay-later order (bank transfer, cash
on delivery) seen unpaid first was paid when it is first seen paid, not when it was placed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.config import Settings
from campaigner.customers.loader import load_orders
from campaigner.customers.records import PAID_AT_IS_CREATION
from campaigner.db.models import Order

CREATED = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 6, 9, 0, tzinfo=UTC)
PAID_BEFORE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def record(status: str, paid_at: datetime | None, **extra: Any) -> dict[str, Any]:
    return {
        "external_id": "727",
        "status": status,
        "total": "100",
        "paid_at": paid_at.isoformat() if paid_at else "",
        "customer": {"phone": "09121112233"},
        **extra,
    }


@pytest.mark.parametrize(
    ("stored", "paid_at"),
    [
        (None, CREATED),  # never seen: a shop's history, placed and paid at once
        ("pending", NOW),  # on hold until now: paid now
        ("failed", NOW),  # a failed payment retried
        ("paid", PAID_BEFORE),  # seen paid already: the time it got then stays
        ("cancelled", CREATED),  # back from the bin: it was paid before
        ("refunded", CREATED),
    ],
)
def test_the_payment_time_of_an_order_without_one_is_when_it_was_first_seen_paid(
    sessions: sessionmaker[Session], settings: Settings, stored: str | None, paid_at: datetime
) -> None:
    defaults = settings.customers
    if stored is not None:
        with sessions.begin() as session:
            before = PAID_BEFORE if stored == "paid" else None
            load_orders(session, [record(stored, before)], defaults, now=PAID_BEFORE)
    with sessions.begin() as session:
        load_orders(
            session, [record("paid", CREATED, **{PAID_AT_IS_CREATION: True})], defaults, now=NOW
        )
    with sessions() as session:
        assert session.scalars(select(Order.paid_at)).one() == paid_at


def test_a_payment_time_the_shop_gave_is_kept_whatever_was_stored(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    defaults = settings.customers
    with sessions.begin() as session:
        load_orders(session, [record("pending", None)], defaults, now=PAID_BEFORE)
    paid = CREATED + timedelta(days=2)
    with sessions.begin() as session:
        load_orders(session, [record("paid", paid)], defaults, now=NOW)
    with sessions() as session:
        assert session.scalars(select(Order.paid_at)).one() == paid
