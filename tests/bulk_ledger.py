"""A planner-shaped ledger of many due messages, for the tests and benchmarks that drain one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from campaigner.db.models import Customer, Message


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
