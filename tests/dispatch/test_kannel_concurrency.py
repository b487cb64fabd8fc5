"""Kannel takes one message per request: a batch goes out `max_in_flight` requests at a time.

Counted on the server side by a slow smsbox stand-in, which holds the first requests until
`max_in_flight` of them are open together (or a few seconds pass), so the count never
depends on timing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from dispatch_helpers import add_customer, make_dispatcher, queue, with_sending
from kannel_stand_in import KannelStandIn
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.config import GatewaySettings, Settings
from campaigner.gateways.kannel import KannelGateway

MORNING = datetime(2026, 3, 22, 6, 30, tzinfo=UTC)  # 10:00 in Tehran
MAX_IN_FLIGHT = 8
MESSAGES = 50


@pytest.fixture
def kannel() -> Iterator[KannelStandIn]:
    server = KannelStandIn(delay=0.02, hold_until=MAX_IN_FLIGHT).start()
    yield server
    server.stop()


def test_a_batch_of_50_goes_out_max_in_flight_requests_at_a_time_on_pooled_connections(
    sessions: sessionmaker[Session], clock: FixedClock, settings: Settings, kannel: KannelStandIn
) -> None:
    """Regression: the 50 messages of a batch went one request after another (50 messages in
    7.5 s at 150 ms per request), whatever `max_in_flight` said."""
    clock.set(MORNING)
    phones = [f"+98912{n:07d}" for n in range(MESSAGES)]
    for phone in phones:
        queue(sessions, add_customer(sessions, phone=phone), MORNING)
    config = GatewaySettings(name="kannel", url=kannel.url, max_in_flight=MAX_IN_FLIGHT)
    settings = with_sending(settings, batch_size=100).model_copy(update={"gateway": config})
    gateway = KannelGateway(config)
    try:
        with make_dispatcher(sessions, gateway, clock, settings) as dispatcher:
            report = dispatcher.dispatch_once()
    finally:
        gateway.close()
    assert report.sent == MESSAGES
    assert sorted(phone for phone, _text in kannel.received) == phones
    assert kannel.peak == MAX_IN_FLIGHT  # reached, and never exceeded
    assert len(kannel.connections) <= MAX_IN_FLIGHT  # one pooled client, kept alive


def test_answers_are_recorded_half_the_slots_at_a_time_not_one_transaction_each(
    sessions: sessionmaker[Session], clock: FixedClock, settings: Settings, kannel: KannelStandIn
) -> None:
    """Regression: each answer was recorded in its own transaction (a commit per message,
    the sender's largest cost in a py-spy profile of a Kannel drain)."""
    clock.set(MORNING)
    for n in range(MESSAGES):
        queue(sessions, add_customer(sessions, phone=f"+98912{n:07d}"), MORNING)
    config = GatewaySettings(name="kannel", url=kannel.url, max_in_flight=MAX_IN_FLIGHT)
    settings = with_sending(settings, batch_size=100).model_copy(update={"gateway": config})
    engine = sessions.kw["bind"]
    commits: list[object] = []
    count = commits.append  # one bound method, to remove the very listener added
    event.listen(engine, "commit", count)
    gateway = KannelGateway(config)
    try:
        with make_dispatcher(sessions, gateway, clock, settings) as dispatcher:
            report = dispatcher.dispatch_once()
    finally:
        event.remove(engine, "commit", count)
        gateway.close()
    assert report.sent == MESSAGES
    assert kannel.peak == MAX_IN_FLIGHT
    # Claim, prepare, then a transaction per MAX_IN_FLIGHT / 2 answers (and the last ones
    # together): about 15 for 50 messages, where one per answer made 50 and more.
    assert len(commits) <= 2 + MESSAGES // (MAX_IN_FLIGHT // 2) + 2
