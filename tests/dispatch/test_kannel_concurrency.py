"""Kannel takes one message per request: a batch goes out `max_in_flight` requests at a time.

A slow stand-in for smsbox's sendsms (its reply as in shared/reference/kannel.md: `202`,
body `0: Accepted for delivery`) counts the requests it holds open at once and the
connections they came on. It holds the first requests until `max_in_flight` of them are
open together (or a few seconds pass), so the count never depends on timing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from dispatch_helpers import add_customer, make_dispatcher, queue, with_sending
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.config import GatewaySettings, Settings
from campaigner.gateways.kannel import KannelGateway

MORNING = datetime(2026, 3, 22, 6, 30, tzinfo=UTC)  # 10:00 in Tehran
MAX_IN_FLIGHT = 8
MESSAGES = 50


class SlowKannel(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, target: int, delay: float = 0.02, gate_seconds: float = 3.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.target = target
        self.delay = delay
        self.gate_seconds = gate_seconds
        self.open = 0
        self.peak = 0
        self.receivers: list[str] = []
        self.connections: set[int] = set()
        self.changed = threading.Condition()
        self.gate_open = False
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def start(self) -> SlowKannel:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def arrive(self, port: int, receiver: str) -> None:
        with self.changed:
            self.open += 1
            self.peak = max(self.peak, self.open)
            self.receivers.append(receiver)
            self.connections.add(port)
            self.changed.notify_all()
            # The first requests wait for each other; once is enough (it may time out).
            self.changed.wait_for(
                lambda: self.gate_open or self.peak >= self.target, self.gate_seconds
            )
            self.gate_open = True

    def leave(self) -> None:
        with self.changed:
            self.open -= 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as smsbox speaks it
    server: SlowKannel

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the counts are the record."""

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        self.server.arrive(self.client_address[1], query["to"][0])
        time.sleep(self.server.delay)
        self.server.leave()
        body = b"0: Accepted for delivery"
        self.send_response(202)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def kannel() -> Iterator[SlowKannel]:
    server = SlowKannel(target=MAX_IN_FLIGHT).start()
    yield server
    server.stop()


def test_a_batch_of_50_goes_out_max_in_flight_requests_at_a_time_on_pooled_connections(
    sessions: sessionmaker[Session], clock: FixedClock, settings: Settings, kannel: SlowKannel
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
    assert sorted(kannel.receivers) == sorted(phone.lstrip("+") for phone in phones)
    assert kannel.peak == MAX_IN_FLIGHT  # reached, and never exceeded
    assert len(kannel.connections) <= MAX_IN_FLIGHT  # one pooled client, kept alive
