"""A tiny SMS gateway over loopback HTTP, and the `Gateway` that talks to it.

The server keeps its own log of every message it received (ledger id, phone, text): the
crash and concurrency tests judge the dispatcher by that log, not by the dispatcher's
own bookkeeping. It also stands in for Kannel's smsbox (`GET /cgi-bin/sendsms`, one message
per request, the ledger id read from the `dlr-url` the `kannel` gateway sends). Run as a
script it serves in its own process (for the benchmark) and prints its port.
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from campaigner.config import GatewaySettings
from campaigner.gateways.base import (
    DeliveryReport,
    Gateway,
    GatewayError,
    OutgoingMessage,
    SendResult,
)


class LocalSmsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, keep_log: bool = True, delay: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.keep_log = keep_log
        self.delay = delay  # seconds each send takes, so that requests are in flight a while
        self.log: list[tuple[int, str, str]] = []
        self.received_ids: set[int] = set()
        self.count = 0
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> LocalSmsServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server: LocalSmsServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the log that matters is the server's message log."""

    def do_GET(self) -> None:
        """smsbox's sendsms: what `KannelGateway` sends, answered as smsbox answers it."""
        parts = urlsplit(self.path)
        if parts.path != "/cgi-bin/sendsms":
            self.send_error(404)
            return
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        message_id = int(parse_qs(urlsplit(query["dlr-url"]).query)["id"][0])
        server = self.server
        time.sleep(server.delay)
        with server.lock:
            server.count += 1
            if server.keep_log:
                server.log.append((message_id, "+" + query["to"], query["text"]))
                server.received_ids.add(message_id)
        data = b"0: Accepted for delivery"
        self.send_response(202)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server = self.server
        if self.path == "/send":
            messages = body["messages"]
            time.sleep(server.delay)
            with server.lock:
                server.count += len(messages)
                if server.keep_log:
                    for m in messages:
                        server.log.append((m["id"], m["phone"], m["text"]))
                        server.received_ids.add(m["id"])
            reply: dict[str, Any] = {
                "results": [{"id": m["id"], "provider_id": f"srv-{m['id']}"} for m in messages]
            }
        elif self.path == "/status":
            with server.lock:
                reply = {"found": [i for i in body["ids"] if i in server.received_ids]}
        else:
            self.send_error(404)
            return
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class LocalHttpGateway(Gateway):
    """Sends to a LocalSmsServer; `options.max_batch` sets the batch size (default 100), and
    `options.status_lookup = false` makes it like Kannel, which cannot look messages up."""

    name: ClassVar[str] = "local_http"
    supports_status: ClassVar[bool] = True

    def __init__(self, settings: GatewaySettings, *, webhook_url: str = "") -> None:
        super().__init__(settings, webhook_url=webhook_url)
        self.max_batch = int(settings.options.get("max_batch", 100))
        self.supports_status = bool(settings.options.get("status_lookup", True))
        host, _, port = settings.url.removeprefix("http://").partition(":")
        self._address = (host, int(port))
        self._local = threading.local()

    def _post(self, path: str, payload: dict[str, Any]) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(*self._address, timeout=10)
            connection.connect()
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._local.connection = connection
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        try:
            connection.request("POST", path, body, headers)
        except ConnectionRefusedError as exc:
            self._local.connection = None
            raise GatewayError(f"gateway unreachable: {exc}") from None
        response = connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise GatewayError(f"HTTP {response.status}", code=str(response.status))
        return json.loads(data)

    def send(self, batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        payload = {"messages": [{"id": m.id, "phone": m.phone, "text": m.text} for m in batch]}
        reply = self._post("/send", payload)
        return [SendResult.accepted(r["id"], r["provider_id"]) for r in reply["results"]]

    def status(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryReport]:
        found = set(self._post("/status", {"ids": [m.id for m in messages]})["found"])
        return [
            DeliveryReport(status="sent" if m.id in found else "not_found", message_id=m.id)
            for m in messages
        ]


def gateway_for(
    port: int, max_batch: int = 100, status_lookup: bool = True, **settings: Any
) -> LocalHttpGateway:
    options = {"max_batch": max_batch, "status_lookup": status_lookup}
    config = GatewaySettings(
        name="local_http", url=f"http://127.0.0.1:{port}", options=options, **settings
    )
    return LocalHttpGateway(config)


if __name__ == "__main__":
    server = LocalSmsServer(keep_log="--log" in sys.argv)
    print(server.port, flush=True)
    server.serve_forever()
