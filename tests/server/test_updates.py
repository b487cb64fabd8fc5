"""The webhook update queue: many callbacks, few transactions, each answered after commit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from bulk_ledger import plan
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.db.models import Message, MessageStatus
from campaigner.gateways.base import DeliveryReport
from campaigner.server.updates import UpdateQueue

CALLBACKS = 200


def sent_rows(sessions: sessionmaker[Session], count: int) -> list[int]:
    plan(sessions, count)
    with sessions.begin() as session:
        session.execute(update(Message).values(status=MessageStatus.SENT, gateway="kannel"))
        return list(session.scalars(select(Message.id).order_by(Message.id)))


def test_concurrent_reports_are_applied_in_few_transactions_each_answered_once_committed(
    sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    """Regression: each callback was its own transaction (and its own thread), which made
    the webhooks, not Kannel, the limit of a drain with delivery reports."""
    ids = sent_rows(sessions, CALLBACKS)
    updates = UpdateQueue(sessions, clock)

    async def callback(message_id: int) -> list[bool]:
        # Kannel's two reports per message: accepted by the SMSC, then delivered.
        await updates.reports([DeliveryReport("sent", message_id=message_id)], ["kannel"])
        known = await updates.reports(
            [DeliveryReport("delivered", message_id=message_id)], ["kannel"]
        )
        with sessions() as session:  # answered: so it is committed
            assert session.get(Message, message_id).status == MessageStatus.DELIVERED  # type: ignore[union-attr]
        return known

    async def everything() -> list[list[bool]]:
        return await asyncio.gather(*(callback(i) for i in ids))

    answers = asyncio.run(everything())
    assert answers == [[True]] * CALLBACKS
    assert updates.batches < CALLBACKS  # 400 reports, far fewer transactions
    with sessions() as session:
        rows = session.execute(select(Message.status, Message.delivered_at)).all()
    assert {status for status, _ in rows} == {MessageStatus.DELIVERED}
    assert {at for _, at in rows} == {clock.now()}


def test_a_bad_update_fails_alone_and_the_rest_of_its_batch_lands(
    sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    ids = sent_rows(sessions, 20)
    updates = UpdateQueue(sessions, clock)

    def refuse(session: Session, now: datetime) -> str:
        raise ValueError("a reply the ledger cannot hold")

    async def everything() -> list[object]:
        calls = [
            updates.reports([DeliveryReport("delivered", message_id=i)], ["kannel"]) for i in ids
        ]
        return await asyncio.gather(updates.inbound(refuse), *calls, return_exceptions=True)

    refused, *answers = asyncio.run(everything())
    assert isinstance(refused, ValueError)
    assert answers == [[True]] * len(ids)
    with sessions() as session:
        statuses = set(session.scalars(select(Message.status)))
    assert statuses == {MessageStatus.DELIVERED}


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 22, 8, 0, tzinfo=UTC))
