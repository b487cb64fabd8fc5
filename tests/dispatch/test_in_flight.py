"""Only requests actually in flight are ever `sending`: what a crash can strand.

The ledger is read from outside the dispatcher (another session) while a request is on its
way, as a second process or an operator would see it at the instant of a crash.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from dispatch_helpers import (
    ScriptedGateway,
    add_customer,
    make_dispatcher,
    queue,
    row,
    with_sending,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.config import GatewaySettings, Settings
from campaigner.db.models import Message, MessageStatus
from campaigner.dispatch import DispatchReport
from campaigner.dispatch.ledger import claim_due, start_sending
from campaigner.gateways.base import GatewayError, OutgoingMessage, SendResult

MORNING = datetime(2026, 3, 22, 6, 30, tzinfo=UTC)  # 10:00 in Tehran


def one_at_a_time(settings: Settings, max_in_flight: int = 1) -> Settings:
    gateway = GatewaySettings(name="scripted", max_in_flight=max_in_flight)
    return settings.model_copy(update={"gateway": gateway})


def statuses(sessions: sessionmaker[Session]) -> Counter[str]:
    with sessions() as session:
        rows = session.execute(select(Message.status, func.count()).group_by(Message.status))
        return Counter({status: number for status, number in rows})


def accept(batch: Sequence[OutgoingMessage]) -> list[SendResult]:
    return [SendResult.accepted(m.id, f"p-{m.id}") for m in batch]


def test_a_claimed_row_is_sending_only_while_its_own_request_is_in_flight(
    sessions: sessionmaker[Session], clock: FixedClock, settings: Settings
) -> None:
    """Regression: a crash turned the whole claimed batch `unknown` (591 of 1,500 rows that
    never reached the gateway), because claiming marked every row `sending` at once."""
    clock.set(MORNING)
    for _ in range(10):
        queue(sessions, add_customer(sessions), MORNING)
    seen: list[Counter[str]] = []

    def look_at_the_ledger(batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        seen.append(statuses(sessions))
        return accept(batch)

    gateway = ScriptedGateway(*[look_at_the_ledger] * 10, max_batch=1)
    with make_dispatcher(sessions, gateway, clock, one_at_a_time(settings)) as dispatcher:
        report = dispatcher.dispatch_once()
    assert (report.claimed, report.sent) == (10, 10)
    for number, counts in enumerate(seen):
        # The one request on its way; those before it answered; the rest untouched.
        assert counts == Counter(sending=1, sent=number, queued=9 - number), number


def test_rows_claimed_by_a_dead_dispatcher_go_out_once_and_only_its_started_one_is_unknown(
    sessions: sessionmaker[Session], clock: FixedClock, settings: Settings
) -> None:
    clock.set(MORNING)
    ids = [queue(sessions, add_customer(sessions), MORNING) for _ in range(5)]
    lease = MORNING + timedelta(seconds=settings.sending.lease_seconds)
    # A dispatcher claims all five, starts one request, and dies.
    assert sorted(claim_due(sessions, MORNING, 10, claim="dead", lease_until=lease)) == ids
    with sessions.begin() as session:
        start_sending(
            session, ids[:1], MORNING, claim="dead", gateway="scripted", lease_until=lease
        )

    gateway = ScriptedGateway(supports_status=False)
    with make_dispatcher(sessions, gateway, clock, settings) as dispatcher:
        assert dispatcher.dispatch_once().claimed == 0  # the dead one's lease still holds
        clock.set(lease + timedelta(seconds=1))
        report = dispatcher.dispatch_once()
    assert (report.unknown, report.claimed, report.sent) == (1, 4, 4)
    assert sorted(m.id for m in gateway.sent) == ids[1:]
    assert row(sessions, ids[0]).status == MessageStatus.UNKNOWN
    for message_id in ids[1:]:
        # Back in the queue untouched: this send is their first attempt.
        assert (row(sessions, message_id).status, row(sessions, message_id).attempts) == ("sent", 1)


def test_a_stop_lets_requests_in_flight_finish_and_hands_the_rest_back(
    sessions: sessionmaker[Session], clock: FixedClock, settings: Settings
) -> None:
    clock.set(MORNING)
    ids = [queue(sessions, add_customer(sessions), MORNING) for _ in range(6)]
    stopping = threading.Event()

    def then_stop(batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        stopping.set()  # SIGTERM arrives while this request is on its way
        return accept(batch)

    gateway = ScriptedGateway(accept, then_stop, max_batch=1)
    with make_dispatcher(sessions, gateway, clock, one_at_a_time(settings)) as dispatcher:
        report = dispatcher.dispatch_once(stopping.is_set)
    assert (report.sent, report.requeued) == (2, 4)
    for message_id in ids[2:]:
        message = row(sessions, message_id)
        assert (message.status, message.claim, message.lease_until) == ("queued", None, None)
        assert message.attempts == 0


def test_a_timeout_after_the_request_left_is_unknown_not_retried(
    sessions: sessionmaker[Session], clock: FixedClock, settings: Settings
) -> None:
    """The gateway may have sent it: retrying could send it twice."""
    clock.set(MORNING)
    message_id = queue(sessions, add_customer(sessions), MORNING)

    def read_timeout(batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        raise GatewayError("kannel: ReadTimeout: timed out", code="network", maybe_sent=True)

    with make_dispatcher(sessions, ScriptedGateway(read_timeout), clock, settings) as dispatcher:
        report = dispatcher.dispatch_once()
        clock.advance(timedelta(hours=1))
        assert dispatcher.dispatch_once().claimed == 0
    assert (report.unknown, report.retried) == (1, 0)
    message = row(sessions, message_id)
    assert (message.status, message.reason) == ("unknown", "send_error")
    assert message.last_error is not None and "ReadTimeout" in message.last_error


def test_a_dispatcher_that_outlives_its_lease_never_sends_what_another_took_over(
    sessions: sessionmaker[Session], clock: FixedClock, settings: Settings
) -> None:
    """Dispatcher A stalls in its first request past its lease; B (its clock already past
    that lease) takes over the rest of A's batch. Each message still goes out exactly once,
    and A's late answer still settles the row B had to declare `unknown`."""
    clock.set(MORNING)
    ids = [queue(sessions, add_customer(sessions), MORNING) for _ in range(5)]
    later = FixedClock(MORNING + timedelta(seconds=settings.sending.lease_seconds + 1))
    taken_over: list[DispatchReport] = []
    b_gateway = ScriptedGateway(supports_status=False)

    def stall_while_b_takes_over(batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        with make_dispatcher(sessions, b_gateway, later, one_at_a_time(settings)) as b:
            taken_over.append(b.dispatch_once())
        return accept(batch)

    a_gateway = ScriptedGateway(stall_while_b_takes_over, max_batch=1)
    with make_dispatcher(sessions, a_gateway, clock, one_at_a_time(settings)) as a:
        report = a.dispatch_once()
    [b_report] = taken_over
    assert (b_report.unknown, b_report.claimed, b_report.sent) == (1, 4, 4)
    assert (report.claimed, report.sent) == (5, 1)  # it could start nothing more
    sent = [m.id for m in a_gateway.sent] + [m.id for m in b_gateway.sent]
    assert sorted(sent) == ids
    assert {row(sessions, i).status for i in ids} == {MessageStatus.SENT}


def test_a_max_in_flight_one_batch_cannot_fill_is_said_at_start(
    sessions: sessionmaker[Session],
    clock: FixedClock,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The sender runs at most the requests one claimed batch makes: more in flight than
    that was capped without a word."""
    small = with_sending(settings, batch_size=100)

    def start(max_batch: int, max_in_flight: int) -> None:
        gateway = ScriptedGateway(max_batch=max_batch)
        make_dispatcher(sessions, gateway, clock, one_at_a_time(small, max_in_flight)).close()

    with caplog.at_level(logging.WARNING, logger="campaigner.dispatch.dispatcher"):
        start(1, 100)
        # The default, not chosen: a batch gateway needs fewer requests than 4, and says nothing.
        make_dispatcher(sessions, ScriptedGateway(max_batch=50), clock, small).close()
        assert not caplog.records
        start(1, 128)
        start(50, 4)
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "gateway scripted: max_in_flight = 128, but a batch of sending.batch_size = 100 "
        "messages makes only 100 requests (1 messages each), so at most 100 run at once; "
        "raise sending.batch_size to at least 128",
        "gateway scripted: max_in_flight = 4, but a batch of sending.batch_size = 100 "
        "messages makes only 2 requests (50 messages each), so at most 2 run at once; "
        "raise sending.batch_size to at least 200",
    ]
