"""Strangers on the network: raw requests against the daemon's real HTTP server (uvicorn).

Every answer is a 4xx (never a 500), the log stays one JSON object per line with no
traceback and no secret, and nobody without a credential makes the server read a body.
The hostile JSON bodies for the ingest API live in bodies/, one file each.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.config import GatewaySettings, Settings
from campaigner.db.models import InboundMessage, OptOut
from campaigner.gateways.base import Gateway
from campaigner.gateways.kannel import KannelGateway
from campaigner.gateways.twilio import TwilioGateway
from campaigner.logs import configure_logging
from campaigner.server.app import create_app
from campaigner.server.ingest import ingest_routes
from campaigner.server.serve import BackgroundServer
from campaigner.settings_secrets import register_settings_secrets

TOKEN = "Wh/Tok+SECRET=2"
API_TOKEN = "api-SECRET-token"
KANNEL_PASSWORD = "KnPw/SECRET&1 x"
TWILIO_TOKEN = "twilio-SECRET"
BODY_TIMEOUT = 0.5
HANG = 30  # longest a test waits for an answer on a loaded machine
BODIES = Path(__file__).parent / "bodies"
QUOTED_TOKEN = "Wh%2FTok%2BSECRET%3D2"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def read_answer(sock: socket.socket) -> Answer:
    """One HTTP response, read until its Content-Length or until the server closes."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed without an answer: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return Answer(int(status_line.split()[1]), headers, body)


def closed_by_server(sock: socket.socket, timeout: float = 5.0) -> bool:
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return True


class Stranger:
    """A client that writes raw bytes: whatever it likes, as slowly as it likes."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)

    def send(self, data: bytes) -> Stranger:
        self.sock.sendall(data)
        return self

    def answer(self) -> Answer:
        return read_answer(self.sock)

    def close(self) -> None:
        self.sock.close()


def post_head(path: str, length: int, *headers: str) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/x-www-form-urlencoded",
        f"Content-Length: {length}",
        *headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def get_head(target: bytes, *headers: bytes) -> bytes:
    return b"\r\n".join([b"GET " + target + b" HTTP/1.1", b"Host: 127.0.0.1", *headers]) + (
        b"\r\n\r\n"
    )


@dataclass
class Server:
    running: BackgroundServer
    sessions: sessionmaker[Session]
    stream: io.StringIO
    read: int = 0

    @property
    def port(self) -> int:
        return self.running.port

    def stranger(self) -> Stranger:
        return Stranger(self.port)

    def exchange(self, request: bytes) -> Answer:
        stranger = self.stranger().send(request)
        try:
            return stranger.answer()
        finally:
            stranger.close()

    def log(self) -> list[dict[str, str]]:
        """The JSON log so far; fails on any line that is not one JSON object."""
        time.sleep(0.05)  # the server thread may still be writing the last line
        everything = self.stream.getvalue()
        text, self.read = everything[self.read :], len(everything)
        entries = []
        for line in text.splitlines():
            entry = json.loads(line)
            assert isinstance(entry, dict), line
            entries.append(entry)
        assert "Traceback" not in text and "ClientDisconnect" not in text, text
        for secret in ("SECRET", QUOTED_TOKEN):
            assert secret not in text, text
        return entries


@pytest.fixture
def server(
    settings: Settings,
    sessions: sessionmaker[Session],
    clock: FixedClock,
) -> Iterator[Server]:
    settings = Settings.model_validate(
        {
            "database": {"url": settings.database.url},
            "gateway": {"name": "kannel", "username": "campaigner", "password": KANNEL_PASSWORD},
            "server": {
                "webhook_token": TOKEN,
                "api_tokens": [API_TOKEN],
                "body_timeout_seconds": BODY_TIMEOUT,
                "max_unverified_requests": 2,
            },
        }
    )
    stream = io.StringIO()
    configure_logging(log_format="json")
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    register_settings_secrets(settings)
    gateways: dict[str, Gateway] = {
        "kannel": KannelGateway(settings.gateway),
        "twilio": TwilioGateway(
            GatewaySettings(name="twilio", account_sid="AC1", auth_token=TWILIO_TOKEN),
            webhook_url="https://hooks.example/webhooks/twilio",
        ),
    }
    app = create_app(
        settings=settings,
        sessions=sessions,
        clock=clock,
        gateways=gateways,
        extra_routes=ingest_routes(settings=settings, sessions=sessions, clock=clock),
    )
    with BackgroundServer(app) as running:
        yield Server(running, sessions, stream)
    for gateway in gateways.values():
        gateway.close()


@pytest.mark.parametrize(
    ("path", "credential"),
    [
        ("/webhooks/kannel/inbound", ""),
        ("/webhooks/kannel/inbound?token=wrong", ""),
        ("/webhooks/nosuch/dlr", ""),
        ("/webhooks/shop/shopify", ""),
        ("/api/v1/customers", "Authorization: Bearer wrong"),
    ],
)
def test_no_credential_no_body_read(server: Server, path: str, credential: str) -> None:
    """Issue 13: bodies were read up to max_body_bytes before the token was checked.

    The stranger announces a megabyte and sends a little of it: the answer comes at once,
    and the server closes the connection instead of reading on."""
    head = post_head(path, 1_000_000, *([credential] if credential else []))
    stranger = server.stranger().send(head + b"x" * 1000)
    answer = stranger.answer()
    assert answer.status == 401
    assert answer.headers["connection"] == "close"
    assert closed_by_server(stranger.sock)
    stranger.close()
    assert len(server.log()) <= 1


def test_a_slow_body_is_cut_off_by_the_body_timeout(server: Server) -> None:
    stranger = server.stranger().send(
        post_head(f"/webhooks/kannel/inbound?token={QUOTED_TOKEN}", 100) + b"from=0912"
    )
    stranger.sock.settimeout(HANG)
    started = time.monotonic()
    answer = stranger.answer()
    stranger.close()
    assert answer.status == 408
    # Never before the body timeout; after it, as soon as a loaded machine lets the server
    # run. That it was this timeout that cut the body off, the answer and the log say.
    assert BODY_TIMEOUT <= time.monotonic() - started < HANG
    assert f"within {BODY_TIMEOUT:g} seconds" in answer.body.decode()
    (entry,) = server.log()
    assert f"body not received within {BODY_TIMEOUT:g}s" in entry["message"]


def test_a_client_that_goes_away_mid_body_is_one_short_log_line(server: Server) -> None:
    """Issue 13: each aborted connection logged a 45-line ClientDisconnect traceback through
    uvicorn's own handler, unmasked and not JSON."""
    for _ in range(3):
        stranger = server.stranger().send(
            post_head(f"/webhooks/kannel/dlr?token={QUOTED_TOKEN}", 1000) + b"id=1&sta"
        )
        time.sleep(0.1)
        stranger.close()
    deadline = time.monotonic() + 5
    entries: list[dict[str, str]] = []
    while len(entries) < 3 and time.monotonic() < deadline:
        entries += server.log()
    assert [e["message"] for e in entries] == [
        "POST /webhooks/kannel/dlr: the client 127.0.0.1 went away mid-body"
    ] * 3


def test_uvicorn_access_lines_are_json_with_the_token_masked(server: Server) -> None:
    logging.getLogger("uvicorn.access").setLevel(logging.INFO)  # what -v does
    answer = server.exchange(get_head(f"/webhooks/kannel/dlr?id=1&token={QUOTED_TOKEN}".encode()))
    assert answer.status == 400  # no status: a bad report, but a proved caller
    access = [e for e in server.log() if e["logger"] == "uvicorn.access"]
    assert len(access) == 1
    assert "GET /webhooks/kannel/dlr?id=1&token=******** HTTP/1.1" in access[0]["message"]


def test_unverified_reads_are_capped_and_the_slowest_gives_way(server: Server) -> None:
    """Twilio's proof is a signature over the body: only a few such bodies are read at once,
    and a newcomer takes the place of the slowest (503, closed) rather than being refused.
    The tests of the slots themselves: tests/server/test_guard.py."""
    guard = server.running.app.state.guard
    head = post_head("/webhooks/twilio/inbound", 500, "X-Twilio-Signature: forged")
    waiting = []
    for held in (1, 2):
        waiting.append(server.stranger().send(head + b"From=%2B1"))
        deadline = time.monotonic() + HANG
        while guard.held < held and time.monotonic() < deadline:
            time.sleep(0.01)
    newcomer = server.stranger().send(head)
    oldest = waiting[0].answer()
    assert (oldest.status, oldest.headers.get("retry-after")) == (503, "1")
    assert oldest.headers["connection"] == "close"
    for stranger in (waiting[1], newcomer):
        stranger.send(b"x" * (491 if stranger is waiting[1] else 500))
        assert stranger.answer().status == 401  # read, then the forged signature fails
    for stranger in (*waiting, newcomer):
        stranger.close()
    (given_up,) = [e for e in server.log() if "slot given" in e["message"]]
    assert given_up["message"].startswith("POST /webhooks/twilio/inbound: 9 bytes in ")
    no_signature = server.exchange(post_head("/webhooks/twilio/inbound", 500) + b"x" * 500)
    assert no_signature.status == 401


def token_query(extra: str) -> bytes:
    return f"?{extra}&token={QUOTED_TOKEN}".encode()


HOSTILE_REQUESTS = {
    "huge DLR id": get_head(b"/webhooks/kannel/dlr" + token_query("id=" + "9" * 40 + "&status=1")),
    "negative DLR id": get_head(b"/webhooks/kannel/dlr" + token_query("id=-1&status=1")),
    "Persian-digit DLR id": get_head(
        b"/webhooks/kannel/dlr" + token_query("id=%DB%B1%DB%B2&status=1")
    ),
    "huge DLR status": get_head(b"/webhooks/kannel/dlr" + token_query("id=1&status=" + "9" * 50)),
    "huge inbound ts": get_head(
        b"/webhooks/kannel/inbound" + token_query("from=09121234567&text=STOP&ts=" + "9" * 30)
    ),
    "inbound ts in 5138": get_head(
        b"/webhooks/kannel/inbound" + token_query("from=09121234567&text=STOP&ts=99999999999")
    ),
    "NUL in inbound text": get_head(
        b"/webhooks/kannel/inbound" + token_query("from=09121234567&text=ST%00OP&id=1")
    ),
    "NUL in the sender": get_head(b"/webhooks/kannel/inbound" + token_query("from=%00&text=STOP")),
    "non-UTF-8 inbound text": get_head(
        b"/webhooks/kannel/inbound" + token_query("from=09121234567&text=%FF%FE%C3%28")
    ),
    "huge provider id": get_head(
        b"/webhooks/kannel/inbound" + token_query("from=09121234567&text=hi&id=" + "a" * 500)
    ),
    "DLR id in superscript digits": get_head(
        b"/webhooks/kannel/dlr" + token_query("id=%C2%B2&status=1")
    ),
    "non-UTF-8 form body": post_head(f"/webhooks/kannel/inbound?token={QUOTED_TOKEN}", 24)
    + b"from=09121234567&text=\xff",
    "Twilio signature not ASCII": post_head(
        "/webhooks/twilio/dlr?id=1", 10, "X-Twilio-Signature: \xff\xfe"
    )
    + b"a=b&c=d&ef",
    "Twilio id in Arabic-Indic digits": post_head(
        "/webhooks/twilio/dlr?id=%D9%A1", 10, "X-Twilio-Signature: forged"
    )
    + b"a=b&c=d&ef",
    "a token in another gateway's path": get_head(b"/webhooks/nosuch/inbound?token=guess"),
}


# Broken HTTP itself: uvicorn refuses it with a one-line warning of its own, and a request
# already under way when that happens adds our one line about the client leaving.
BROKEN_FRAMES = {
    "Content-Length not a number": post_head(
        f"/webhooks/kannel/dlr?token={QUOTED_TOKEN}", 0
    ).replace(b"Content-Length: 0", b"Content-Length: \xb2"),
    "Content-Length of 40 digits": post_head(
        f"/webhooks/kannel/dlr?token={QUOTED_TOKEN}", 0
    ).replace(b"Content-Length: 0", b"Content-Length: " + b"9" * 40),
    "a 20 KB header": get_head(b"/webhooks/kannel/dlr", b"X-Pad: " + b"a" * 20_000),
    "a broken chunked body": b"POST /webhooks/kannel/dlr"
    + token_query("id=1")
    + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
}


@pytest.mark.parametrize("name", [*HOSTILE_REQUESTS, *BROKEN_FRAMES])
def test_hostile_webhook_requests_get_a_4xx_and_one_log_line(server: Server, name: str) -> None:
    answer = server.exchange(HOSTILE_REQUESTS.get(name) or BROKEN_FRAMES[name])
    assert 400 <= answer.status < 500, (answer.status, answer.body)
    assert len(server.log()) <= (1 if name in HOSTILE_REQUESTS else 2)
    with server.sessions() as session:
        assert session.scalars(select(OptOut)).all() == []
        assert session.scalars(select(InboundMessage)).all() == []


def json_post(path: str, data: bytes) -> bytes:
    head = post_head(path, len(data), f"Authorization: Bearer {API_TOKEN}")
    return head.replace(b"x-www-form-urlencoded", b"json") + data


ENDPOINTS = {
    "customers": "/api/v1/customers",
    "orders": "/api/v1/orders",
    "order-paid": "/api/v1/events/order-paid",
}


@pytest.mark.parametrize("body", sorted(BODIES.iterdir()), ids=lambda path: path.name)
def test_hostile_json_bodies_never_cause_a_server_error(server: Server, body: Path) -> None:
    known = json.dumps({"id": "c1", "first_name": "Sara", "phone": "09121234567"}).encode()
    assert server.exchange(json_post(ENDPOINTS["customers"], known)).status == 200
    endpoint = ENDPOINTS[body.name.split("--")[0]]
    answer = server.exchange(json_post(endpoint, body.read_bytes()))
    assert 400 <= answer.status < 500 or answer.status == 200, (answer.status, answer.body)
    assert b"SECRET" not in answer.body
    server.log()
