"""The raw-socket GET client of the Kannel gateway: what each failure means, how answers are framed.

A raw socket server plays the gateway, so each way a request can fail happens for real: no
connection (nothing sent), a connection dropped after the request left (maybe sent), an
idle keep-alive connection closed by the server between two requests (opened again, not
an error).
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from campaigner.config import GatewaySettings
from campaigner.gateways.base import GatewayError, Outcome, OutgoingMessage
from campaigner.gateways.kannel import KannelGateway
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


def serve_answers(serve: Callable[[Handler], RawServer], *answers: bytes) -> RawServer:
    """A server that reads one request per answer and writes that answer in pieces, the
    way TCP may hand them over, then closes the connection."""
    started: list[RawServer] = []

    def handle(conn: socket.socket, _number: int) -> None:
        for answer in answers:
            started[0].read_request(conn)
            for start in range(0, len(answer), 7):
                conn.sendall(answer[start : start + 7])
        conn.close()

    started.append(serve(handle))
    return started[0]


def test_answers_framed_by_chunks_by_the_close_or_asking_to_close(
    serve: Callable[[Handler], RawServer],
) -> None:
    chunked = (
        b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\n0: \r\n15;ext=1\r\nAccepted for delivery\r\n0\r\n\r\n"
    )
    closing = (
        b"HTTP/1.1 100 Continue\r\n\r\n"  # an interim answer is passed over
        b"HTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 2\r\n\r\n3:"
    )
    server = serve_answers(serve, ACCEPTED, chunked, closing)
    plain = client(server.port)
    answers = [plain.get(f"cgi-bin/sendsms?text={n}") for n in range(3)]
    assert [a.text for a in answers] == ["0: Accepted for delivery"] * 2 + ["3:"]
    assert server.connections == 1
    # The server asked to close: the next request opens a new connection, no error.
    server2 = serve_answers(serve, b"HTTP/1.0 200 OK\r\n\r\n0: Accepted for delivery")
    body_to_close = client(server2.port).get("cgi-bin/sendsms?text=x")
    assert (body_to_close.status_code, body_to_close.text) == (200, "0: Accepted for delivery")


@pytest.mark.parametrize(
    "garbled",
    [
        b"SMTP/1.1 202 Accepted\r\n\r\n",
        b"HTTP/1.1 two hundred\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 202 Accepted\r\nContent-Length: -4\r\n\r\n",
        b"HTTP/1.1 202 Accepted\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 202 Accepted\r\nContent-Length: 24\r\n\r\n0: Acc",  # cut short
    ],
)
def test_a_garbled_or_cut_answer_may_have_sent_it(
    serve: Callable[[Handler], RawServer], garbled: bytes
) -> None:
    server = serve_answers(serve, garbled)
    with pytest.raises(GatewayError) as caught:
        client(server.port).get(f"cgi-bin/sendsms?password={SECRET}")
    assert caught.value.maybe_sent
    assert SECRET not in str(caught.value)


def test_the_kannel_gateway_sends_each_parameter_and_reads_a_refusal(
    serve: Callable[[Handler], RawServer],
) -> None:
    """The query the gateway builds (its shared part encoded once) carries every parameter,
    the text intact; an answer other than "accepted" is read as before."""
    refused = (
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 32\r\n\r\nAuthorization failed for sendsms"
    )
    server = serve_answers(serve, ACCEPTED, refused)
    settings = GatewaySettings.model_validate(
        {
            "name": "kannel",
            "url": f"http://127.0.0.1:{server.port}",
            "username": "tester",
            "password": SECRET,
            "sender": "98100",
            "options": {"smsc": "fake1", "from": "ignored"},
        }
    )
    gateway = KannelGateway(settings, webhook_url="http://hook.example/kannel", webhook_token="t&k")
    text = "سلام & 100% = ok?\n🎂"
    [result] = gateway.send([OutgoingMessage(41, "+989121234567", text, "ucs2")])
    assert result.outcome is Outcome.ACCEPTED
    with pytest.raises(GatewayError) as caught:
        gateway.send([OutgoingMessage(42, "+989121234567", "hi")])
    gateway.close()
    assert caught.value.auth
    target = server.requests[0].split(b" ")[1].decode("ascii")
    assert target.startswith("/cgi-bin/sendsms?")
    query = {key: values for key, values in parse_qs(urlsplit(target).query).items()}
    assert query == {
        "username": ["tester"],
        "password": [SECRET],
        "charset": ["UTF-8"],
        "smsc": ["fake1"],
        "to": ["989121234567"],
        "from": ["98100"],
        "text": [text],
        "coding": ["2"],
        "dlr-mask": ["31"],
        "dlr-url": ["http://hook.example/kannel/dlr?id=41&status=%d&token=t%26k"],
    }
    assert b"coding=0" in server.requests[1]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1, made by the openssl command line."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    made = subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        capture_output=True,
        check=False,
    )  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"openssl could not make a certificate: {made.stderr.decode()[-200:]}")
    return str(cert), str(key)


def serve_tls(
    serve: Callable[[Handler], RawServer], certificate: tuple[str, str], answers: int
) -> RawServer:
    """A TLS server that answers `answers` requests on one connection, then closes it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    started: list[RawServer] = []

    def handle(conn: socket.socket, _number: int) -> None:
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                for _ in range(answers):
                    started[0].read_request(tls)
                    tls.sendall(ACCEPTED)
        except (ssl.SSLError, OSError):
            conn.close()  # the client refused the handshake: nothing was read

    started.append(serve(handle))
    return started[0]


def test_https_sends_over_tls_on_one_kept_alive_connection(
    serve: Callable[[Handler], RawServer],
    certificate: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", certificate[0])  # the client trusts this one
    server = serve_tls(serve, certificate, answers=2)
    plain = PlainGet(f"https://127.0.0.1:{server.port}/", 5.0, 5.0, "kannel")
    answers = [plain.get("cgi-bin/sendsms?text=one"), plain.get("cgi-bin/sendsms?text=two")]
    plain.close()
    assert [a.status_code for a in answers] == [202, 202]
    assert answers[1].text == "0: Accepted for delivery"
    assert server.connections == 1
    assert [r.split(b" ")[1] for r in server.requests] == [
        b"/cgi-bin/sendsms?text=one",
        b"/cgi-bin/sendsms?text=two",
    ]


def test_an_untrusted_certificate_means_nothing_was_sent(
    serve: Callable[[Handler], RawServer],
    certificate: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    server = serve_tls(serve, certificate, answers=1)
    with pytest.raises(GatewayError) as caught:
        PlainGet(f"https://127.0.0.1:{server.port}/", 5.0, 5.0, "kannel").get(
            f"cgi-bin/sendsms?password={SECRET}"
        )
    assert not caught.value.maybe_sent
    assert caught.value.code == "network"
    assert "certificate" in str(caught.value).lower()
    assert SECRET not in str(caught.value)
    assert server.requests == []
