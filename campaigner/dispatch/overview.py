"""What the ledger says about sending, for `campaigner status` and `campaigner history`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigner.db.models import Message, MessageStatus


@dataclass
class QueueOverview:
    by_status: dict[str, int] = field(default_factory=dict)
    by_rule: dict[tuple[str, str], int] = field(default_factory=dict)  # (rule, status) -> count
    next_due: datetime | None = None
    due_now: int = 0
    unknown: Sequence[Message] = ()


def queue_overview(session: Session, now: datetime, *, unknown_limit: int = 50) -> QueueOverview:
    overview = QueueOverview()
    counts = session.execute(
        select(Message.rule, Message.status, func.count()).group_by(Message.rule, Message.status)
    )
    for rule, status, number in counts:
        overview.by_rule[(rule, status)] = number
        overview.by_status[status] = overview.by_status.get(status, 0) + number
    queued = Message.status == MessageStatus.QUEUED
    overview.next_due = session.scalar(select(func.min(Message.scheduled_for)).where(queued))
    overview.due_now = (
        session.scalar(select(func.count()).where(queued, Message.scheduled_for <= now)) or 0
    )
    overview.unknown = session.scalars(
        select(Message)
        .where(Message.status == MessageStatus.UNKNOWN)
        .order_by(Message.updated_at, Message.id)
        .limit(unknown_limit)
    ).all()
    return overview


def message_history(
    session: Session, *, phone: str | None = None, customer_id: int | None = None
) -> Sequence[Message]:
    """Every ledger row for a phone number or a customer, oldest first."""
    query = select(Message).order_by(Message.due_at, Message.id)
    if phone is not None:
        query = query.where(Message.phone == phone)
    if customer_id is not None:
        query = query.where(Message.customer_id == customer_id)
    return session.scalars(query).all()
