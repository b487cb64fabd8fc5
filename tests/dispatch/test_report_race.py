"""A delivery report that lands while the dispatcher still waits for the gateway's answer.

Kannel calls its `dlr-url` as soon as the SMSC reports, which can be before the HTTP answer
to the send request reaches the dispatcher. The report is the truth; the row it settles must
then look like any settled row: no claim, no lease, its attempt counted.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import pytest
from dispatch_helpers import ScriptedGateway, add_customer, make_dispatcher, row
from dispatch_helpers import queue as enqueue
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, sessionmaker
from test_in_flight import MORNING

from campaigner.clock import FixedClock
from campaigner.config import GatewaySettings, Settings
from campaigner.db.models import Message, MessageStatus
from campaigner.dispatch.ledger import expire_leases, write_results
from campaigner.gateways.base import DeliveryReport, OutgoingMessage, SendResult
from campaigner.inbound import apply_delivery_report

ROUTES = ["scripted"]
CLAIM = "c" * 32


def report(
    sessions: sessionmaker[Session], clock: FixedClock, message_id: int, status: str
) -> None:
    """What the webhook does with a report, in a session (and a thread) of its own."""
    with sessions.begin() as session:
        applied = apply_delivery_report(
            session, DeliveryReport(status, message_id=message_id), routes=ROUTES, now=clock.now()
        )
    assert applied


def settled_cleanly(message: Message) -> None:
    assert message.claim is None and message.lease_until is None, (message.id, message.status)
    assert message.attempts == 1
    assert message.sent_at is not None
    assert message.gateway == "scripted"


@pytest.mark.parametrize(
    ("status", "final"),
    [
        ("delivered", MessageStatus.DELIVERED),
        ("undelivered", MessageStatus.UNDELIVERED),
        ("sent", MessageStatus.SENT),
    ],
)
def test_a_report_before_the_answer_leaves_a_settled_row(
    sessions: sessionmaker[Session],
    clock: FixedClock,
    settings: Settings,
    status: str,
    final: MessageStatus,
) -> None:
    """Regression: the row stayed `delivered` with its claim and lease set and 0 attempts,
    because the dispatcher's record (which clears them) is written only over `sending`."""
    clock.set(MORNING)
    message_id = enqueue(sessions, add_customer(sessions), MORNING)

    def report_first(batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        assert row(sessions, message_id).status == MessageStatus.SENDING
        report(sessions, clock, message_id, status)
        return [SendResult.accepted(m.id, f"p-{m.id}") for m in batch]

    gateway = ScriptedGateway(report_first, max_batch=1)
    with make_dispatcher(sessions, gateway, clock, settings) as dispatcher:
        dispatched = dispatcher.dispatch_once()
    assert dispatched.claimed == 1
    message = row(sessions, message_id)
    assert message.status == final
    settled_cleanly(message)


def test_reports_racing_the_dispatcher_leave_every_row_settled(
    sessions: sessionmaker[Session], clock: FixedClock, settings: Settings
) -> None:
    """Reports from another thread, each at a random moment around the answer of its
    request: before the dispatcher records it, during, or after. Whatever the order, every
    row ends delivered, counted once, with nothing held."""
    clock.set(MORNING)
    ids = [enqueue(sessions, add_customer(sessions), MORNING) for _ in range(40)]
    reports: queue.Queue[int | None] = queue.Queue()
    rng = random.Random(12)

    def accept_and_report(batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        for message in batch:
            reports.put(message.id)
        threading.Event().wait(rng.uniform(0, 0.01))
        return [SendResult.accepted(m.id, f"p-{m.id}") for m in batch]

    def webhook() -> None:
        while (message_id := reports.get()) is not None:
            threading.Event().wait(rng.uniform(0, 0.01))
            report(sessions, clock, message_id, "delivered")

    listener = threading.Thread(target=webhook)
    listener.start()
    gateway_settings = GatewaySettings(name="scripted", max_in_flight=4)
    racing = settings.model_copy(update={"gateway": gateway_settings})
    gateway = ScriptedGateway(*[accept_and_report] * len(ids), max_batch=1)
    try:
        with make_dispatcher(sessions, gateway, clock, racing) as dispatcher:
            assert dispatcher.dispatch_once().sent == len(ids)
    finally:
        reports.put(None)
        listener.join(timeout=60)
    with sessions() as session:
        messages = session.scalars(select(Message).where(Message.id.in_(ids))).all()
    assert {message.status for message in messages} == {MessageStatus.DELIVERED}
    for message in messages:
        settled_cleanly(message)


def _two_sending_rows(
    sessions: sessionmaker[Session], now: datetime, lease_until: datetime, later_first: bool
) -> tuple[int, int]:
    """Two rows in `sending` under one claim, (lower id, higher id). The lower row is then
    stored again, after the higher one: a scan meets the higher row first. `later_first`
    also schedules the lower id later, so that the (status, scheduled_for) index does too."""
    customer = add_customer(sessions)
    with sessions.begin() as session:
        rows = [
            Message(
                rule="thank_you",
                customer_id=customer,
                occurrence_key=str(n),
                status=MessageStatus.SENDING,
                phone="+989121234567",
                due_at=now,
                scheduled_for=now + timedelta(minutes=1 - n) if later_first else now,
                claim=CLAIM,
                lease_until=lease_until,
                gateway="scripted",
            )
            for n in range(2)
        ]
        session.add_all(rows)
        session.flush()
        low, high = sorted(row.id for row in rows)
    with sessions.begin() as session:
        session.execute(update(Message).where(Message.id == low).values(updated_at=now))
    return low, high


def _race_the_applier(
    sessions: sessionmaker[Session], low: int, high: int, write: Callable[[], None]
) -> list[BaseException]:
    """The report applier holds the lower row; `write` runs in a thread until it waits for
    a row lock; then the applier asks for the higher row. The errors of both sides."""
    engine = sessions.kw["bind"]
    locked = "SELECT id FROM messages WHERE id = :id FOR UPDATE"
    waiting = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    errors: list[BaseException] = []

    def writing() -> None:
        try:
            write()
        except BaseException as exc:
            errors.append(exc)

    # The observer in autocommit: within a transaction PostgreSQL shows pg_stat_activity as
    # it was at the first read, before the writer had connected.
    with (
        engine.connect() as applier,
        engine.connect().execution_options(isolation_level="AUTOCOMMIT") as observer,
    ):
        transaction = applier.begin()
        applier.execute(text(locked), {"id": low})
        writer = threading.Thread(target=writing)
        writer.start()
        for _ in range(500):  # until the writer waits for a row lock
            if observer.execute(text(waiting)).scalar():
                break
            time.sleep(0.01)
        else:
            raise AssertionError("the writer never waited for the applier's row")
        try:
            applier.execute(text(locked), {"id": high})
            transaction.commit()
        except BaseException as exc:
            errors.append(exc)
            transaction.rollback()
        writer.join(timeout=30)
    return errors


def _row_locks(sessions: sessionmaker[Session]) -> None:
    if sessions.kw["bind"].dialect.name != "postgresql":
        pytest.skip("row locks: SQLite has one writer at a time")


def test_recording_answers_never_deadlocks_with_the_report_applier(
    sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    """Regression (PostgreSQL): `bench/kannel.py --db-url postgresql…` died with "deadlock
    detected" in the sender's record UPDATE. The report applier locks rows in id order
    (`apply_delivery_reports`: `ORDER BY id FOR UPDATE`); the record UPDATE … FROM unnest
    locked them in its own order. Here the applier holds the lower row, the dispatcher
    records both answers (higher id first), and only then the applier asks for the higher
    row: both must commit."""
    _row_locks(sessions)
    now = clock.now()
    low, high = _two_sending_rows(sessions, now, lease_until=now, later_first=False)
    answers = [
        {"id": message_id, "status": MessageStatus.SENT, "sent_at": now, "claim": None}
        for message_id in (high, low)
    ]

    def record() -> None:
        with sessions.begin() as session:
            write_results(session, CLAIM, answers)

    errors = _race_the_applier(sessions, low, high, record)
    assert not errors, errors
    with sessions() as session:
        found = session.scalars(select(Message.status).order_by(Message.id)).all()
    assert found == [MessageStatus.SENT, MessageStatus.SENT]


def test_expiring_leases_never_deadlocks_with_the_report_applier(
    sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    """As above, for `expire_leases`: its UPDATE met the rows in scan order, the higher row
    first, while the applier holds the lower one and then asks for the higher one."""
    _row_locks(sessions)
    now = clock.now()
    lapsed = now - timedelta(minutes=1)
    low, high = _two_sending_rows(sessions, now, lease_until=lapsed, later_first=True)
    expired: list[int] = []
    errors = _race_the_applier(
        sessions, low, high, lambda: expired.append(expire_leases(sessions, now))
    )
    assert not errors, errors
    assert expired == [2]
    with sessions() as session:
        found = session.scalars(select(Message.status).order_by(Message.id)).all()
    assert found == [MessageStatus.UNKNOWN, MessageStatus.UNKNOWN]
