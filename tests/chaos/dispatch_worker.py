"""The real dispatcher in its own process, for the chaos test to SIGKILL at random moments.

Usage: dispatch_worker.py DB_URL PORT CLOCK_OFFSET_SECONDS [local|kannel]
(PYTHONPATH must hold tests/)

It imports everything and connects, says "ready", and waits for "go" on stdin, so the test
can start the next worker while the current one runs. Its clock runs from a fixed noon in
Tehran plus real elapsed time plus the offset, so each restart starts later than every
lease the killed run left behind. The gateway is like Kannel: one message per request,
`MAX_IN_FLIGHT` requests at a time, and no status lookup, so nothing settles `unknown` rows
but a person; with `kannel` it is the real `kannel` gateway and its raw-socket client,
against the local server's smsbox stand-in.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta

from local_gateway import gateway_for
from sqlalchemy.orm import Session

from campaigner.config import GatewaySettings, Settings
from campaigner.db import create_engine_for, session_factory
from campaigner.db.models import Message
from campaigner.dispatch import Dispatcher, Rendered
from campaigner.gateways.base import Gateway
from campaigner.gateways.kannel import KannelGateway
from campaigner.policy import RulePolicy

NOON_IN_TEHRAN = datetime(2026, 3, 22, 8, 30, tzinfo=UTC)
LEASE_SECONDS = 30
BATCH_SIZE = 50
MAX_IN_FLIGHT = 4  # requests, of one message each
SETTINGS = {
    "sending": {
        "max_per_day": 0,
        "max_per_week": 0,
        "lease_seconds": LEASE_SECONDS,
        "batch_size": BATCH_SIZE,
    },
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


def make_gateway(kind: str, port: int) -> Gateway:
    if kind == "kannel":
        settings = GatewaySettings(
            name="kannel",
            url=f"http://127.0.0.1:{port}",
            username="tester",
            password="foobar",
            rate_per_second=150,
            max_in_flight=MAX_IN_FLIGHT,
        )
        # The webhook URL makes each request carry its ledger id (in the dlr-url).
        return KannelGateway(settings, webhook_url="http://127.0.0.1:9/kannel")
    return gateway_for(
        port, max_batch=1, status_lookup=False, rate_per_second=150, max_in_flight=MAX_IN_FLIGHT
    )


def main(db_url: str, port: int, offset: float, kind: str) -> None:
    settings = Settings.model_validate({"database": {"url": db_url}, **SETTINGS})
    engine = create_engine_for(db_url)
    engine.connect().close()
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return
    gateway = make_gateway(kind, port)
    dispatcher = Dispatcher(
        session_factory(engine),
        gateway,
        RunningClock(offset),
        settings.model_copy(update={"gateway": gateway.settings}),
        renderer=PlainRenderer(),
        policies=lambda rule: RulePolicy(),
    )
    with dispatcher:
        dispatcher.drain()
    engine.dispose()
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), (sys.argv[4:] or ["local"])[0])
