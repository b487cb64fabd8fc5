"""The real dispatcher in its own process, for the crash test to SIGKILL at random moments.

Usage: crash_worker.py DB_URL PORT CLOCK_OFFSET_SECONDS

It imports everything and connects, says "ready", and waits for "go" on stdin, so the test
can start the next worker while the current one runs. Its clock runs from a fixed noon in
Tehran plus real elapsed time plus the offset, so each restart starts later than every
lease the killed run left behind.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta

from local_gateway import gateway_for
from sqlalchemy.orm import Session

from campaigner.config import Settings
from campaigner.db import create_engine_for, session_factory
from campaigner.db.models import Message
from campaigner.dispatch import Dispatcher, Rendered
from campaigner.policy import RulePolicy

NOON_IN_TEHRAN = datetime(2026, 3, 22, 8, 30, tzinfo=UTC)
SETTINGS = {
    "sending": {"max_per_day": 0, "max_per_week": 0, "lease_seconds": 30, "batch_size": 25},
}


class RunningClock:
    def __init__(self, offset: float) -> None:
        self._start = time.monotonic()
        self._base = NOON_IN_TEHRAN + timedelta(seconds=offset)

    def now(self) -> datetime:
        return self._base + timedelta(seconds=time.monotonic() - self._start)


class PlainRenderer:
    def render(self, session: Session, message: Message) -> Rendered:
        return Rendered(
            f"{message.rule} {message.occurrence_key} for #{message.customer_id}", "gsm7", 1
        )


def main(db_url: str, port: int, offset: float) -> None:
    settings = Settings.model_validate({"database": {"url": db_url}, **SETTINGS})
    engine = create_engine_for(db_url)
    engine.connect().close()
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    gateway = gateway_for(port, max_batch=5, rate_per_second=150, max_in_flight=2)
    dispatcher = Dispatcher(
        session_factory(engine),
        gateway,
        RunningClock(offset),
        settings,
        renderer=PlainRenderer(),
        policies=lambda rule: RulePolicy(),
    )
    with dispatcher:
        dispatcher.reconcile()
        dispatcher.drain()
        dispatcher.reconcile()
    engine.dispose()
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
