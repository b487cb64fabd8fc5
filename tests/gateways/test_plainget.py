"""The standard-library GET client of the Kannel gateway: what each failure means.

A raw socket server plays the gateway, so each way a request can fail happens for real: no
connection (nothing sent), a connection dropped after the request left (maybe sent), an
idle keep-alive connection closed by the server between two requests (opened again, not
an error).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from campaigner.gateways.base import GatewayError
from campaigner.gateways.plainget import PlainGet

# smsbox's answer to sendsms: `202`, body `0: Accepted for delivery` (shared/reference/kannel.md).
ACCEPTED = b"HTTP/1.1 202 Accepted\r\nContent-Length: 24\r\n\r\n0: Accepted for delivery"
SECRET = "s3cret-pass"

Handler = Callable[[socket.socket, int], None]


class RawServer:
    """Accepts connections and hands each to `handler` with its number (0, 1, ...)."""

    def __init__(self, handler: Handler) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.handler = handler
        self.requests: list[bytes] = []
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            number, self.connections = self.connections, self.connections + 1
            threading.Thread(target=self.handler, args=(conn, number), daemon=True).start()

    def read_request(self, conn: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        self.requests.append(data)
        return data

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], RawServer]]:
    servers: list[RawServer] = []

    def start(handler: Handler) -> RawServer:
        servers.append(RawServer(handler))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def client(port: int, timeout: float = 5.0) -> PlainGet:
    return PlainGet(f"http://127.0.0.1:{port}/", timeout, timeout, "kannel")


def test_no_connection_means_nothing_was_sent() -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(GatewayError) as caught:
        client(port).get(f"cgi-bin/sendsms?password={SECRET}")
    assert not caught.value.maybe_sent
    assert caught.value.code == "network"
    assert SECRET not in str(caught.value)


def test_a_connection_dropped_after_the_request_left_may_have_sent_it(
    serve: Callable[[Handler], RawServer],
) -> None:
    def drop(conn: socket.socket, _number: int) -> None:
        server.read_request(conn)
        conn.close()

    server = serve(drop)
    with pytest.raises(GatewayError) as caught:
        client(server.port).get(f"cgi-bin/sendsms?password={SECRET}&text=hi")
    assert caught.value.maybe_sent
    assert server.requests and b"GET /cgi-bin/sendsms?password=" in server.requests[0]
    assert SECRET not in str(caught.value)


def test_no_answer_within_the_timeout_may_have_sent_it(
    serve: Callable[[Handler], RawServer],
) -> None:
    release = threading.Event()

    def hang(conn: socket.socket, _number: int) -> None:
        server.read_request(conn)
        release.wait(10)
        conn.close()

    server = serve(hang)
    try:
        with pytest.raises(GatewayError) as caught:
            client(server.port, timeout=0.2).get("cgi-bin/sendsms?text=hi")
    finally:
        release.set()
    assert caught.value.maybe_sent


def test_requests_share_a_kept_alive_connection_and_reopen_one_the_server_closed(
    serve: Callable[[Handler], RawServer],
) -> None:
    """The first connection answers twice and is then closed by the server while idle, as
    smsbox drops idle keep-alive connections: the third request goes on a new one."""
    answered = threading.Event()

    def answer(conn: socket.socket, number: int) -> None:
        for _ in range(2 if number == 0 else 1):
            server.read_request(conn)
            conn.sendall(ACCEPTED)
        conn.close()
        if number == 0:
            answered.set()

    server = serve(answer)
    plain = client(server.port)
    first = plain.get("cgi-bin/sendsms?text=one")
    second = plain.get("cgi-bin/sendsms?text=two")
    assert answered.wait(5)
    third = plain.get("cgi-bin/sendsms?text=three")
    plain.close()
    assert [r.status_code for r in (first, second, third)] == [202, 202, 202]
    assert third.text == "0: Accepted for delivery"
    assert server.connections == 2
    assert [request.split(b" ")[1] for request in server.requests] == [
        b"/cgi-bin/sendsms?text=one",
        b"/cgi-bin/sendsms?text=two",
        b"/cgi-bin/sendsms?text=three",
    ]
