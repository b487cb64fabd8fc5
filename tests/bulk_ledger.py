"""A planner-shaped ledger of many due messages, for the tests and benchmarks that drain one."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from campaigner.config import GatewaySettings, Settings, load_settings
from campaigner.db.models import Customer, Message, MessageStatus, Order
from campaigner.project import create_project


def plan(
    sessions: sessionmaker[Session],
    count: int,
    *,
    rules: int = 3,
    due_offset: timedelta | None = None,
) -> None:
    """`count` ledger rows spread over several rules, planner-shaped; due at 11:00 in
    Tehran on 22 March 2026, or `due_offset` from the real time (for the benchmark)."""
    due = datetime(2026, 3, 22, 7, 30, tzinfo=UTC)
    if due_offset is not None:
        due = datetime.now(UTC) + due_offset
    customers = [
        {"id": n, "external_id": f"c{n}", "phone": f"+98912{n:07d}", "marketing_consent": True}
        for n in range(1, count // rules + 2)
    ]
    messages = [
        {
            "rule": f"rule{n % rules}",
            "customer_id": n // rules + 1,
            "occurrence_key": f"order-{n}",
            "status": "queued",
            "phone": f"+98912{n // rules + 1:07d}",
            "due_at": due,
            "scheduled_for": due,
            "expires_at": due + timedelta(days=2),
        }
        for n in range(count)
    ]
    with sessions.begin() as session:
        session.execute(insert(Customer), customers)
        session.execute(insert(Message), messages)


NAMES = ["سارا", "علی", "مریم", "رضا", "زهرا", "Sam", "Lena", "حسین"]


def sample_project(
    directory: Path, gateway: GatewaySettings, db_url: str | None = None
) -> Settings:
    """The sample rules and templates (`campaigner init`) with the send window open all day
    and no caps, so that every planned message goes out at once."""
    create_project(directory)
    settings = load_settings(directory / "config.toml")
    sending = settings.sending.model_copy(
        update={"window": "00:00-24:00", "max_per_day": 0, "max_per_week": 0}
    )
    update: dict[str, object] = {"gateway": gateway, "sending": sending}
    if db_url is not None:
        update["database"] = settings.database.model_copy(update={"url": db_url})
    return settings.model_copy(update=update)


def plan_sample_messages(sessions: sessionmaker[Session], messages: int) -> None:
    """Due messages of the sample rules, planner-shaped: two thirds birthday wishes (which
    issue a coupon each), a third thank-yous (which load their order), due a minute ago."""
    now = datetime.now(UTC)
    due = now - timedelta(minutes=1)
    today = date.today()
    customers, orders, rows = [], [], []
    for n in range(1, messages + 1):
        phone = f"+98912{n:07d}"
        customers.append(
            {
                "id": n,
                "external_id": f"c{n}",
                "first_name": NAMES[n % len(NAMES)],
                "phone": phone,
                "birthday": date(1990, today.month, min(today.day, 28)),
                "locale": "en" if NAMES[n % len(NAMES)].isascii() else "fa",
                "marketing_consent": True,
                "orders_count": 1,
            }
        )
        row = {
            "customer_id": n,
            "status": MessageStatus.QUEUED,
            "phone": phone,
            "due_at": due,
            "scheduled_for": due,
            "expires_at": now + timedelta(hours=12),
        }
        if n % 3:
            rows.append({**row, "rule": "birthday", "occurrence_key": "2026", "priority": 80})
        else:
            orders.append(
                {
                    "id": n,
                    "external_id": f"o{n}",
                    "customer_id": n,
                    "total": Decimal(1_250_000 + n),
                    "currency": "IRR",
                    "paid_at": now - timedelta(hours=2),
                }
            )
            rows.append(
                {
                    **row,
                    "rule": "thank_you",
                    "occurrence_key": str(n),
                    "order_id": n,
                    "priority": 50,
                }
            )
    with sessions.begin() as session:
        session.execute(insert(Customer), customers)
        if orders:
            session.execute(insert(Order), orders)
        session.execute(insert(Message), rows)
