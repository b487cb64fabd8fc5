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
from collections.abc import Sequence
from datetime import timedelta

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


def test_recording_answers_never_deadlocks_with_the_report_applier(
    sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    """Regression (PostgreSQL): `bench/kannel.py --db-url postgresql…` died with "deadlock
    detected" in the sender's record UPDATE. The report applier locks rows in id order
    (`apply_delivery_reports`: `ORDER BY id FOR UPDATE`); the record UPDATE … FROM unnest
    locked them in its own order. Here the applier holds the lower row, the dispatcher
    records both answers (higher id first), and only then the applier asks for the higher
    row: both must commit."""
    engine = sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks: SQLite has one writer at a time")
    claim = "c" * 32
    now = clock.now()
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
                scheduled_for=now,
                claim=claim,
                lease_until=now,
                gateway="scripted",
            )
            for n in range(2)
        ]
        session.add_all(rows)
        session.flush()
        low, high = sorted(row.id for row in rows)
    with sessions.begin() as session:
        # A new version of the lower row, stored after the higher one: a scan meets the
        # higher row first, as the bench's deadlock had it (its ids out of order).
        session.execute(update(Message).where(Message.id == low).values(updated_at=now))
    answers = [
        {"id": message_id, "status": MessageStatus.SENT, "sent_at": now, "claim": None}
        for message_id in (high, low)
    ]
    locked = "SELECT id FROM messages WHERE id = :id FOR UPDATE"
    errors: list[BaseException] = []
    recorder_pid: queue.Queue[int] = queue.Queue()

    def record() -> None:
        try:
            with sessions.begin() as session:
                recorder_pid.put(session.scalar(text("SELECT pg_backend_pid()")))
                write_results(session, claim, answers)
        except BaseException as exc:
            errors.append(exc)

    with engine.connect() as applier, engine.connect() as observer:
        transaction = applier.begin()
        applier.execute(text(locked), {"id": low})
        recording = threading.Thread(target=record)
        recording.start()
        pid = recorder_pid.get(timeout=10)
        waiting = "SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"
        for _ in range(500):  # until the recorder waits for a row lock
            if observer.execute(text(waiting), {"pid": pid}).scalar() == "Lock":
                break
            time.sleep(0.01)
        else:
            raise AssertionError("the recorder never waited for the applier's row")
        try:
            applier.execute(text(locked), {"id": high})
            transaction.commit()
        except BaseException as exc:
            errors.append(exc)
            transaction.rollback()
        recording.join(timeout=30)
    assert not errors, errors
    with sessions() as session:
        found = session.scalars(select(Message.status).order_by(Message.id)).all()
    assert found == [MessageStatus.SENT, MessageStatus.SENT]


def test_expiring_leases_never_deadlocks_with_the_report_applier(
    sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    """As above, for `expire_leases`: its UPDATE met the rows in scan order, the higher row
    first, while the applier holds the lower one and then asks for the higher one."""
    engine = sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks: SQLite has one writer at a time")
    now = clock.now()
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
                # The lower id scheduled later: the (status, scheduled_for) index meets the
                # higher row first, and so does a scan once the lower row is rewritten below.
                scheduled_for=now + timedelta(minutes=1 - n),
                claim="c" * 32,
                lease_until=now - timedelta(minutes=1),
                gateway="scripted",
            )
            for n in range(2)
        ]
        session.add_all(rows)
        session.flush()
        low, high = sorted(row.id for row in rows)
    with sessions.begin() as session:
        # The lower row's new version is stored after the higher one: a scan meets it last.
        session.execute(update(Message).where(Message.id == low).values(updated_at=now))
    locked = "SELECT id FROM messages WHERE id = :id FOR UPDATE"
    errors: list[BaseException] = []
    expired: list[int] = []

    def expire() -> None:
        try:
            expired.append(expire_leases(sessions, now))
        except BaseException as exc:
            errors.append(exc)

    # The observer in autocommit: within a transaction PostgreSQL shows pg_stat_activity as
    # it was at the first read, before expire_leases had connected.
    with (
        engine.connect() as applier,
        engine.connect().execution_options(isolation_level="AUTOCOMMIT") as observer,
    ):
        transaction = applier.begin()
        applier.execute(text(locked), {"id": low})
        expiring = threading.Thread(target=expire)
        expiring.start()
        waiting = (
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        for _ in range(500):  # until expire_leases waits for a row lock
            if observer.execute(text(waiting)).scalar():
                break
            time.sleep(0.01)
        else:
            raise AssertionError("expire_leases never waited for the applier's row")
        try:
            applier.execute(text(locked), {"id": high})
            transaction.commit()
        except BaseException as exc:
            errors.append(exc)
            transaction.rollback()
        expiring.join(timeout=30)
    assert not errors, errors
    assert expired == [2]
    with sessions() as session:
        found = session.scalars(select(Message.status).order_by(Message.id)).all()
    assert found == [MessageStatus.UNKNOWN, MessageStatus.UNKNOWN]
