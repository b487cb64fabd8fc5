"""A message due in the period may have been sent before it began (a row put right by hand,
a clock set wrong): an order between the send and the period's start still converts it. The
conversion join skips the customers who paid nothing since the period began only for the
messages sent after it began."""

from datetime import UTC, datetime
from decimal import Decimal

from report_scenario import SINCE, UNTIL, phone
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.db.models import Customer, Message, Order
from campaigner.db.snapshot import read_only_pair
from campaigner.reports import build_report


def at(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def test_an_order_before_the_period_converts_a_message_sent_before_it(
    engine: Engine, sessions: sessionmaker[Session], settings: Settings
) -> None:
    with sessions.begin() as session:
        for number in (1, 2):
            session.add(
                Customer(id=number, external_id=f"c{number}", phone=phone(number), first_name="")
            )
        session.flush()
        # Customer 1 paid on February 28, after a message sent the day before and due March 1;
        # nothing since. Customer 2 paid in March, after a message sent in March.
        session.add(
            Order(
                id=1,
                external_id="o1",
                customer_id=1,
                paid_at=at(2, 28),
                total=Decimal("10.00"),
                status="paid",
            )
        )
        session.add(
            Order(
                id=2,
                external_id="o2",
                customer_id=2,
                paid_at=at(3, 6),
                total=Decimal("20.00"),
                status="paid",
            )
        )
        for number, due, sent in ((1, at(3, 1, 9), at(2, 27)), (2, at(3, 5), at(3, 5))):
            session.add(
                Message(
                    id=number,
                    rule="thank_you",
                    customer_id=number,
                    occurrence_key=str(number),
                    status="delivered",
                    phone=phone(number),
                    due_at=due,
                    scheduled_for=due,
                    sent_at=sent,
                    segments=1,
                    encoding="gsm7",
                )
            )
    with read_only_pair(engine) as (session, helper):
        report = build_report(
            session,
            since=SINCE,
            until=UNTIL,
            rule=None,
            attribution_days={},
            settings=settings,
            clock=FixedClock(at(4, 5)),
            helper=helper,
        )
    (thank_you,) = report.rules
    assert thank_you.sent == 2
    assert thank_you.conversions == 2
    assert [(item.orders, item.amount) for item in thank_you.revenue] == [(2, Decimal("30.00"))]
