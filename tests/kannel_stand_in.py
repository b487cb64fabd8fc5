"""A stand-in for Kannel's smsbox `sendsms`, for tests that need a slow one, in process.

It answers like smsbox (shared/reference/kannel.md: `202`, body `0: Accepted for delivery`),
`delay` seconds per message, over keep-alive connections as smsbox does, and keeps its own
records: what it received, how many requests it held open at once (`peak`) and on how many
connections they came. The tests judge the daemon by these records, not by the ledger.

`hold_until=n` holds the first requests until `n` are open together (or `hold_seconds`
pass), so that a count of concurrent requests never depends on timing. The first requests
may instead get the statuses in `echoes`, with the request echoed back in the body, as a
misconfigured gateway or proxy answers. With `refuse=True` it answers every request as
smsbox answers a wrong password: `403 Authorization failed for sendsms`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


class KannelStandIn(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        delay: float = 0.0,
        hold_until: int = 0,
        hold_seconds: float = 3.0,
        echoes: Sequence[int] = (),
        refuse: bool = False,
    ) -> None:
        super().__init__(("127.0.0.1", 0), _KannelHandler)
        self.delay = delay
        self.echoes = list(echoes)
        self.refuse = refuse
        self.queries: list[dict[str, str]] = []  # each request's parameters, in order
        self.hold_until = hold_until
        self.hold_seconds = hold_seconds
        self.received: list[tuple[str, str]] = []  # (phone in E.164, text)
        self.open = 0
        self.peak = 0
        self.connections: set[int] = set()  # client ports
        self.lock = threading.Condition()
        self._held = False
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a daemon that exits mid-request is what some tests are about."""

    def start(self) -> KannelStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join()

    def arrive(self, port: int) -> None:
        with self.lock:
            self.open += 1
            self.peak = max(self.peak, self.open)
            self.connections.add(port)
            self.lock.notify_all()
            if not self._held:
                self.lock.wait_for(lambda: self.peak >= self.hold_until, self.hold_seconds)
                self._held = True  # only the first requests wait, even if that timed out

    def leave(self, phone: str, text: str) -> int:
        """Records the request; the status to answer it with."""
        with self.lock:
            self.open -= 1
            self.received.append((phone, text))
            return self.echoes.pop(0) if self.echoes else 202


class _KannelHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as smsbox speaks it
    server: KannelStandIn

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the records that matter are the server's."""

    def do_GET(self) -> None:
        query = parse_qs(urlparse(self.path).query)
        with self.server.lock:
            self.server.queries.append({key: values[0] for key, values in query.items()})
        if self.server.refuse:
            self._answer(403, b"Authorization failed for sendsms")
            return
        self.server.arrive(self.client_address[1])
        time.sleep(self.server.delay)
        status = self.server.leave("+" + query["to"][0], query["text"][0])
        body = b"0: Accepted for delivery"
        if status != 202:
            body = f"Cannot serve GET {self.path} HTTP/1.1".encode()
        self._answer(status, body)

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
