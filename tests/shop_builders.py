"""A tiny shop for engine-level tests: sample-like rules and templates, customers, paid orders.

Times are local to Tehran in March 2026 (UTC+03:30, no daylight saving)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import ClassVar
from zoneinfo import ZoneInfo

from conftest import CaptureGateway
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.calendars import jalali_month_day, month_day
from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.customers.importer import refresh_customer_stats
from campaigner.db.models import Customer, CustomerDate, CustomerScore, Message, Order
from campaigner.gateways.base import OutgoingMessage, SendResult
from campaigner.runtime import Runtime
from campaigner.simulate import TICK

TEHRAN = ZoneInfo("Asia/Tehran")
FOOTER = "\nReply STOP to opt out"  # what the renderer adds to marketing messages


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=TEHRAN)


def write_project(settings: Settings) -> None:
    """A thank-you (priority 50) two hours after each order, a birthday wish (80) at 10:00."""
    rules, templates = settings.paths.rules, settings.paths.templates
    rules.mkdir(parents=True, exist_ok=True)
    templates.mkdir(parents=True, exist_ok=True)
    (rules / "thank_you.toml").write_text(
        'trigger = "post_purchase"\ntemplate = "thank_you.j2"\npriority = 50\n'
        'delay = "2h"\nmax_lateness = "1d"\n',
        encoding="utf-8",
    )
    (rules / "birthday.toml").write_text(
        'trigger = "birthday"\ntemplate = "birthday.j2"\npriority = 80\n'
        'calendar = "customer"\nsend_at = "10:00"\n',
        encoding="utf-8",
    )
    (templates / "thank_you.j2").write_text(
        "Hi {{ first_name }}, thanks for order {{ order.id }}!", encoding="utf-8"
    )
    (templates / "birthday.j2").write_text("Happy birthday {{ first_name }}!", encoding="utf-8")


def write_dated_rules(settings: Settings) -> None:
    """Nowruz greetings (Farvardin 1, 1405 is 2026-03-21) and wedding anniversaries, both at
    11:00 local time, priority 60."""
    rules, templates = settings.paths.rules, settings.paths.templates
    (rules / "nowruz.toml").write_text(
        'trigger = "occasion"\ntemplate = "nowruz.j2"\ndate = "jalali:01-01"\n'
        'occasion = "Nowruz"\nsend_at = "11:00"\npriority = 60\n',
        encoding="utf-8",
    )
    (rules / "anniversary.toml").write_text(
        'trigger = "personal_date"\ntemplate = "anniversary.j2"\ndate = "anniversary"\n'
        'send_at = "11:00"\npriority = 60\n',
        encoding="utf-8",
    )
    (templates / "nowruz.j2").write_text(
        "Happy {{ occasion.name }} {{ occasion.date | jalali }}, {{ first_name }}!",
        encoding="utf-8",
    )
    (templates / "anniversary.j2").write_text(
        "{{ years }} years together, {{ first_name }}!", encoding="utf-8"
    )


def put_segment(session: Session, customer_id: int, segment: str) -> None:
    """Place a customer in a value segment by hand, as rescoring would have (scores left out:
    only the segment is read outside campaigner.segments)."""
    row = session.get(CustomerScore, customer_id)
    if row is None:
        session.add(CustomerScore(customer_id=customer_id, orders=1, segment=segment))
    else:
        row.segment = segment
    session.flush()


def add_own_date(session: Session, customer: Customer, name: str, day: date) -> None:
    session.add(CustomerDate(customer_id=customer.id, name=name, date=day, calendar="gregorian"))
    session.flush()


def add_customer(
    session: Session,
    external_id: str,
    phone: str,
    *,
    birthday: date | None = None,
    consent: bool = True,
) -> Customer:
    customer = Customer(
        external_id=external_id,
        first_name=external_id.capitalize(),
        phone=phone,
        birthday=birthday,
        birth_md=month_day(birthday) if birthday else None,
        birth_jalali_md=jalali_month_day(birthday) if birthday else None,
        timezone="Asia/Tehran",
        locale="en",
        marketing_consent=consent,
    )
    session.add(customer)
    session.flush()
    return customer


def add_order(session: Session, customer: Customer, external_id: str, paid_at: datetime) -> None:
    session.add(
        Order(
            external_id=external_id,
            customer_id=customer.id,
            total=Decimal(100),
            status="paid",
            paid_at=paid_at.astimezone(UTC),
        )
    )
    session.flush()
    refresh_customer_stats(session, [customer.id])


@dataclass(frozen=True)
class Sent:
    at: datetime
    rule: str
    customer_id: str  # the shop's own id
    phone: str
    text: str


class TimedCapture(CaptureGateway):
    """Records the injected clock's time of each send."""

    name: ClassVar[str] = "timed-capture"

    def __init__(self, clock: FixedClock) -> None:
        super().__init__()
        self.clock = clock
        self.times: list[datetime] = []

    def send(self, batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        self.times.extend(self.clock.now() for _ in batch)
        return super().send(batch)


def run_daemon_loop(
    settings: Settings, sessions: sessionmaker[Session], start: datetime, days: int
) -> list[Sent]:
    """What `campaigner run` does on a virtual clock: plan, then dispatch, every 15 minutes."""
    clock = FixedClock(start)
    gateway = TimedCapture(clock)
    runtime = Runtime.build(settings, clock=clock, sessions=sessions, gateway=gateway)
    try:
        while clock.now() < start + timedelta(days=days):
            runtime.plan()
            runtime.drain()
            clock.advance(TICK)
    finally:
        runtime.close()
    with sessions() as session:
        rows = {
            message.id: (message.rule, external_id)
            for message, external_id in session.execute(
                select(Message, Customer.external_id).join(Customer)
            )
        }
    return [
        Sent(at, *rows[m.id], m.phone, m.text)
        for at, m in zip(gateway.times, gateway.sent, strict=True)
    ]
