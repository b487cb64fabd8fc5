"""Two dispatchers, each with its own engine, share one PostgreSQL ledger."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime

import pytest
from bulk_ledger import plan
from dispatch_helpers import with_sending
from local_gateway import LocalSmsServer, gateway_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.db import create_engine_for, session_factory
from campaigner.db.models import Message
from campaigner.dispatch import Dispatcher, DispatchReport, Rendered
from campaigner.policy import RulePolicy

MESSAGES = 10_000


class RuleRenderer:
    def render(self, session: Session, message: Message) -> Rendered:
        return Rendered(f"{message.rule} {message.occurrence_key}", "gsm7", 1)


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_dispatchers_deliver_each_message_exactly_once(
    db_url: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    plan(sessions, MESSAGES)
    settings = with_sending(settings, max_per_day=0, max_per_week=0)
    clock = FixedClock(datetime(2026, 3, 22, 8, 30, tzinfo=UTC))  # noon in Tehran
    server = LocalSmsServer().start()
    start = threading.Barrier(2)
    reports: list[DispatchReport] = []

    def run() -> None:
        engine = create_engine_for(db_url)
        dispatcher = Dispatcher(
            session_factory(engine),
            gateway_for(server.port, max_batch=100),
            clock,
            settings,
            renderer=RuleRenderer(),
            policies=lambda rule: RulePolicy(),
        )
        start.wait()
        with dispatcher:
            reports.append(dispatcher.drain())
        engine.dispose()

    try:
        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.stop()

    deliveries = Counter(message_id for message_id, _phone, _text in server.log)
    assert len(deliveries) == MESSAGES and set(deliveries.values()) == {1}
    assert sum(report.sent for report in reports) == MESSAGES
    assert all(report.sent > 0 for report in reports), "one dispatcher did all the work"
    with sessions() as session:
        statuses = dict(
            session.execute(select(Message.status, func.count()).group_by(Message.status)).all()
        )
    assert statuses == {"sent": MESSAGES}
