"""A dozen customers and a month of messages, orders, coupons and NPS replies, small enough
that every number in the report can be worked out by hand (see the comments)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.db.models import Coupon, Customer, Message, Order
from campaigner.reports import Report, build_report, record_nps_reply

SINCE = date(2026, 3, 1)
UNTIL = date(2026, 3, 31)
NOW = datetime(2026, 4, 5, 12, 0, tzinfo=UTC)
ATTRIBUTION = {"thank_you": 7, "win_back": 10}  # nps falls back to the default 7
NPS_WINDOWS = {"nps": timedelta(days=3)}


def at(month: int, day: int, hour: int = 10, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def phone(customer: int) -> str:
    return f"+98912000{customer:04d}"


def scenario_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "pricing": settings.pricing.model_copy(update={"gsm7": 0.01, "ucs2": 0.02}),
            "reports": settings.reports.model_copy(update={"min_group_size": 3}),
            "shop": settings.shop.model_copy(update={"name": "فروشگاه نمونه"}),
        }
    )


def fill(session: Session) -> None:
    referrers = {2: 1, 3: 1, 9: 2, 8: 1, 12: 2}
    for number in range(1, 13):
        session.add(
            Customer(
                id=number,
                external_id=f"c{number}",
                first_name=f"Customer{number}" if number != 1 else "سارا",
                last_name="",
                phone=phone(number),
                referral_code=f"REF{number}",
                referred_by_id=referrers.get(number),
            )
        )
    session.flush()
    orders = [
        # (id, customer, paid_at, total, status)
        (1, 1, at(6, 1, year=2025), "200.00", "paid"),
        (2, 1, at(3, 5), "100.00", "paid"),  # thank_you m1 converts
        (3, 2, at(3, 12), "50.00", "paid"),  # 9 days after m2: outside 7 days
        (4, 3, at(3, 6), "30.00", "paid"),  # m3 converts, with order 5
        (5, 3, at(3, 8), "20.00", "paid"),
        (6, 4, at(3, 6), "999.00", "pending"),  # not paid: never counts
        (7, 5, at(10, 1, year=2025), "60.00", "paid"),  # churned
        (8, 5, at(4, 2), "99.00", "paid"),  # after the period: ignored
        (9, 6, at(12, 31, 23, year=2025), "10.00", "paid"),  # churned, one hour before cutoff
        (10, 7, at(1, 1, 0), "15.00", "paid"),  # exactly at the cutoff: active
        (11, 9, at(3, 4), "40.00", "paid"),  # held-out m9 converts
        (12, 10, at(11, 1, year=2025), "70.00", "paid"),
        (13, 10, at(3, 19), "80.00", "paid"),  # win_back w1 converts (9 of 10 days)
        (14, 11, at(10, 15, year=2025), "35.00", "paid"),
        (15, 11, at(3, 25), "25.00", "paid"),  # win_back w2: recovered, not attributed
        (16, 12, at(9, 1, year=2025), "45.00", "paid"),
        (17, 12, at(3, 9), "55.00", "paid"),  # before held-out m12 was due
    ]
    for order_id, customer, paid_at, total, status in orders:
        session.add(
            Order(
                id=order_id,
                external_id=f"o{order_id}",
                customer_id=customer,
                paid_at=paid_at,
                total=Decimal(total),
                status=status,
            )
        )
    messages = [
        # (id, rule, customer, status, reason, due/sent, sent?, segments, encoding)
        (1, "thank_you", 1, "delivered", None, at(3, 2), True, 1, "gsm7"),
        (2, "thank_you", 2, "delivered", None, at(3, 3), True, 2, "ucs2"),
        (3, "thank_you", 3, "sent", None, at(3, 4), True, 1, "ucs2"),
        (4, "thank_you", 4, "undelivered", "expired_at_carrier", at(3, 5), True, 1, "gsm7"),
        (5, "thank_you", 5, "failed", "invalid_number", at(3, 5), False, 1, "gsm7"),
        (6, "thank_you", 6, "skipped", "opted_out", at(3, 6), False, None, None),
        (7, "thank_you", 7, "skipped", "cap", at(3, 6), False, None, None),
        (8, "thank_you", 8, "expired", None, at(3, 7), False, None, None),
        (9, "thank_you", 9, "held_out", None, at(3, 2), False, None, None),
        (10, "thank_you", 10, "held_out", None, at(3, 3), False, None, None),
        (11, "thank_you", 11, "queued", None, at(3, 31), False, None, None),
        (12, "thank_you", 12, "held_out", None, at(3, 10), False, None, None),
        (13, "thank_you", 1, "delivered", None, at(2, 20), True, 1, "gsm7"),  # before period
        (21, "win_back", 10, "delivered", None, at(3, 10, 11), True, 1, "ucs2"),
        (22, "win_back", 11, "sent", None, at(3, 11, 11), True, 1, "ucs2"),
        (23, "win_back", 12, "delivered", None, at(3, 12, 11), True, 1, "ucs2"),
        (24, "win_back", 9, "held_out", None, at(3, 10, 11), False, None, None),
        (31, "nps", 1, "delivered", None, at(3, 15), True, 1, "ucs2"),
        (32, "nps", 2, "delivered", None, at(3, 15), True, 1, "ucs2"),
        (33, "nps", 3, "delivered", None, at(3, 16), True, 1, "ucs2"),
        (34, "nps", 4, "delivered", None, at(3, 1), True, 1, "ucs2"),
        (35, "nps", 5, "delivered", None, at(3, 24), True, 1, "ucs2"),
    ]
    for message_id, rule, customer, status, reason, due, sent, segments, encoding in messages:
        session.add(
            Message(
                id=message_id,
                rule=rule,
                customer_id=customer,
                occurrence_key=str(message_id),
                status=status,
                reason=reason,
                phone=phone(customer),
                due_at=due,
                scheduled_for=due,
                sent_at=due if sent else None,
                delivered_at=due + timedelta(minutes=1) if status == "delivered" else None,
                segments=segments,
                encoding=encoding,
            )
        )
    session.flush()
    coupons = [(1, 1, 2), (2, 2, None), (13, 1, 1)]  # message, customer, redeemed order
    for message_id, customer, redeemed in coupons:
        session.add(
            Coupon(
                code=f"THX{message_id}",
                customer_id=customer,
                rule="thank_you",
                message_id=message_id,
                percent=Decimal(10),
                expires_at=at(4, 30),
                redeemed_order_id=redeemed,
            )
        )
    session.flush()


REPLIES = [
    # (customer, text, received_at, recorded?)
    (1, "۹", at(3, 16), True),  # Persian digit: promoter
    (2, " 10! ", at(3, 15, 12), True),
    (2, "7", at(3, 16), True),  # replaces the 10: passive
    (3, "٣", at(3, 17), True),  # Arabic-Indic digit: detractor
    (4, "8", at(3, 10), False),  # nine days after the survey: outside the 3-day window
    (5, "6.", at(3, 24, 15), True),  # detractor, the next week
    (6, "thanks!", at(3, 7), False),  # not a number (and no survey)
    (1, "11", at(3, 16, 12), False),  # out of range
    (7, "9", at(3, 16), False),  # never surveyed
]


def reply_all(session: Session) -> list[bool]:
    return [
        record_nps_reply(
            session,
            phone=phone(customer),
            text=text,
            received_at=received,
            response_windows=NPS_WINDOWS,
        )
        for customer, text, received, _ in REPLIES
    ]


def scenario_report(
    sessions: sessionmaker[Session], settings: Settings, **overrides: object
) -> Report:
    """The scenario's March report (fill, NPS replies, scenario settings); `overrides` replace
    build_report arguments."""
    with sessions.begin() as session:
        fill(session)
        assert reply_all(session) == [recorded for *_, recorded in REPLIES]
    arguments: dict[str, object] = {
        "since": SINCE,
        "until": UNTIL,
        "rule": None,
        "attribution_days": ATTRIBUTION,
        "settings": scenario_settings(settings),
        "clock": FixedClock(NOW),
    }
    arguments.update(overrides)
    with sessions() as session:
        return build_report(session, **arguments)  # type: ignore[arg-type]


def empty_report(sessions: sessionmaker[Session], settings: Settings) -> Report:
    """A report over the whole history of whatever the database holds (nothing, usually)."""
    with sessions() as session:
        return build_report(
            session,
            since=None,
            until=None,
            rule=None,
            attribution_days={},
            settings=settings,
            clock=FixedClock(NOW),
        )
