"""The guard in front of every endpoint: tokens, Content-Length, unread bodies in-process;
the slots for unverified bodies on the daemon's real server, against strangers that hold
them.

More of the guard against raw sockets on a real server: tests/hostile/test_network.py.
"""

from __future__ import annotations

import copy
import json
import select
import socket
import time
from collections.abc import Callable, Iterator

import anyio
import pytest
import woocommerce_payloads as woo_docs
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import Message

from campaigner.clock import FixedClock
from campaigner.config import ServerSettings, Settings
from campaigner.gateways.kannel import KannelGateway
from campaigner.server.app import create_app
from campaigner.server.guard import (
    PER_CLIENT,
    CloseUnread,
    Guard,
    Refused,
    _Slot,
    _slowest,
    matches_any,
    read_body,
)
from campaigner.server.ingest import ingest_routes
from campaigner.server.serve import BackgroundServer
from campaigner.server.signatures import sign


def test_tokens_match_whole_and_never_empty() -> None:
    assert matches_any("s3cret", ["other", "s3cret"])
    assert not matches_any("s3cre", ["s3cret"])
    assert not matches_any("", ["", "s3cret"])
    assert not matches_any("anything", [])
    assert not matches_any("\udcff", ["s3cret"])  # a header no secret could be


def app(guard: Guard) -> Starlette:
    async def echo(request: Request) -> Response:
        if request.headers.get("x-token") != "ok":
            return PlainTextResponse("unauthorised", status_code=401)
        try:
            body = await guard.body(request)
        except Refused as refused:
            return PlainTextResponse(refused.detail, status_code=refused.status)
        return PlainTextResponse(f"{len(body)} bytes")

    routes = [Route("/echo", echo, methods=["GET", "POST"])]
    return Starlette(routes=routes, middleware=[Middleware(CloseUnread)])


@pytest.fixture
def client() -> TestClient:
    return TestClient(app(Guard(ServerSettings(max_body_bytes=2048))))


@pytest.mark.parametrize(
    ("length", "status"),
    [(b"\xb2", 400), (b"-1", 400), (b"1e3", 400), (b"9" * 40, 413), (b"4096", 413)],
)
def test_a_content_length_no_body_could_have_is_refused_before_reading(
    length: bytes, status: int
) -> None:
    """Raw headers (latin-1 bytes, as a stranger may send them), so no client tidies them."""

    async def receive() -> Message:
        raise AssertionError("the body was read")

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(b"content-length", length)],
    }
    with pytest.raises(Refused) as refused:
        anyio.run(read_body, Request(scope, receive), 2048, 1.0)
    assert refused.value.status == status


def test_a_body_over_the_limit_is_refused_while_it_streams(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield from (b"x" * 1024 for _ in range(4))

    response = client.post("/echo", content=chunks(), headers={"x-token": "ok"})
    assert response.status_code == 413


def test_only_answers_that_leave_a_body_unread_close_the_connection(client: TestClient) -> None:
    refused = client.post("/echo", content=b"x" * 100)
    assert (refused.status_code, refused.headers.get("connection")) == (401, "close")
    read = client.post("/echo", content=b"x" * 100, headers={"x-token": "ok"})
    assert (read.text, read.headers.get("connection")) == ("100 bytes", None)
    # Kannel's delivery reports are GETs without a body: their connections stay open.
    get = client.get("/echo")
    assert (get.status_code, get.headers.get("connection")) == (401, None)


# On the daemon's real server (uvicorn), over real sockets. Loopback takes any 127.x.y.z as
# a source address, so strangers, the shop and a trusted proxy each have their own.
SHOP = "127.0.0.3"
STRANGER = "127.0.0.2"
PROXY = "127.0.0.9"
WC_SECRET = "wc-webhook-secret"
TOKEN = "kannel-token"
API_TOKEN = "api-token"
HOLD = 30.0  # the body timeout: longer than any test, so a trickled body holds its slot
WAIT = 10.0  # longest a test waits for the server on a loaded machine
SLOTS = 16  # the default max_unverified_requests


@pytest.fixture
def shop_server(
    request: pytest.FixtureRequest,
    settings: Settings,
    sessions: sessionmaker[Session],
    clock: FixedClock,
) -> Iterator[tuple[BackgroundServer, Guard]]:
    """The daemon's app (shop webhooks, Kannel's, the ingest API) with its default slots,
    behind a trusted proxy at PROXY; the guard's grace is HOLD unless a test gives one
    (indirect parametrisation)."""
    settings = Settings.model_validate(
        {
            "database": {"url": settings.database.url},
            "gateway": {"name": "kannel", "username": "campaigner", "password": "kannel-pw"},
            "server": {
                "woocommerce_webhook_secret": WC_SECRET,
                "webhook_token": TOKEN,
                "api_tokens": [API_TOKEN],
                "body_timeout_seconds": HOLD,
            },
            "console": {"trusted_proxies": [PROXY]},
        }
    )
    # A grace as long as the body timeout, so that no loaded machine makes the test of it
    # late: within it slots go oldest first, and only a test without one compares rates.
    grace = getattr(request, "param", HOLD)
    guard = Guard(settings.server, settings.console.trusted_proxies, grace=grace)
    kannel = KannelGateway(settings.gateway)
    app = create_app(
        settings=settings,
        sessions=sessions,
        clock=clock,
        gateways={"kannel": kannel},
        extra_routes=ingest_routes(settings=settings, sessions=sessions, clock=clock, guard=guard),
        guard=guard,
    )
    with BackgroundServer(app) as running:
        yield running, guard
    kannel.close()


class Clients:
    """Connections to the server from chosen source addresses, closed when the test ends
    (before the server stops)."""

    def __init__(self, server: BackgroundServer) -> None:
        self.server = server
        self.opened: list[socket.socket] = []

    def connect(self, source: str) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.opened.append(sock)
        sock.settimeout(HOLD)
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", self.server.port))
        return sock

    def trickler(self, source: str, forwarded_for: str = "") -> socket.socket:
        """A stranger holding a slot: a forged signature, a body announced, barely begun."""
        sock = self.connect(source)
        extra = [f"X-Forwarded-For: {forwarded_for}"] if forwarded_for else []
        head = request_head(
            "POST",
            "/webhooks/shop/woocommerce",
            1000,
            "Content-Type: application/json",
            "X-WC-Webhook-Signature: forged",
            *extra,
        )
        sock.sendall(head + TRICKLED)
        return sock

    def close(self) -> None:
        for sock in self.opened:
            sock.close()


@pytest.fixture
def clients(shop_server: tuple[BackgroundServer, Guard]) -> Iterator[Clients]:
    opened = Clients(shop_server[0])
    yield opened
    opened.close()


TRICKLED = b'{"id": 727'  # the first 10 of the 1000 bytes a stranger announces


def request_head(method: str, target: str, length: int, *headers: str) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {length}"]
    return ("\r\n".join([*lines, *headers]) + "\r\n\r\n").encode("latin-1")


def answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed without an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        assert chunk, "closed mid-answer"
        body += chunk
    return int(status.split()[1]), headers, body


def delivery(*headers: str) -> bytes:
    """A WooCommerce order.created delivery as `WC_Webhook::deliver()` sends it, signed and
    sent whole at once: the documented order 727 (woocommerce_payloads), its buyer's phone
    made one the shop can text, as in test_shop_webhooks."""
    order = copy.deepcopy(woo_docs.ORDER)
    order["billing"]["phone"] = "09121112233"
    body = json.dumps(order).encode()
    sent = {
        **woo_docs.HEADERS,
        "Content-Type": "application/json",
        "X-WC-Webhook-Topic": "order.created",
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": "created",
        "X-WC-Webhook-Signature": sign(body, WC_SECRET),
    }
    lines = [f"{name}: {value}" for name, value in sent.items()]
    return request_head("POST", "/webhooks/shop/woocommerce", len(body), *lines, *headers) + body


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "not within the wait"
        time.sleep(0.01)


def answered(socks: list[socket.socket], count: int) -> list[socket.socket]:
    """The `count` of `socks` the server has answered (waiting for them), and no more."""
    wait_until(lambda: len(select.select(socks, [], [], 0.05)[0]) >= count)
    time.sleep(0.1)  # one more would show by now
    ready: list[socket.socket] = select.select(socks, [], [], 0)[0]
    assert len(ready) == count
    return ready


def given_way(sock: socket.socket) -> None:
    """The stranger's slot was given to a newer request: 503, and its connection closed."""
    status, headers, _ = answer(sock)
    assert (status, headers.get("retry-after"), headers.get("connection")) == (503, "1", "close")
    assert sock.recv(1) == b""


def still_read(sock: socket.socket) -> None:
    """The stranger kept its slot: the rest of its body is read, and its signature fails."""
    sock.sendall(b"x" * (1000 - len(TRICKLED)))
    assert answer(sock)[0] == 401


def settle(strangers: list[socket.socket], evicted: list[socket.socket]) -> None:
    for sock in strangers:
        if sock in evicted:
            given_way(sock)
        else:
            still_read(sock)


def shop_delivers(clients: Clients, source: str = SHOP, *headers: str) -> None:
    shop = clients.connect(source)
    shop.sendall(delivery(*headers))
    assert answer(shop)[::2] == (200, b"ok 1")


@pytest.mark.parametrize(
    ("source", "forwarded_for"),
    [
        (STRANGER, lambda i: ""),
        # A peer that is no trusted proxy is itself, whatever its X-Forwarded-For says.
        (STRANGER, lambda i: f"198.51.100.{i}"),
        # One IPv6 host behind the proxy: its addresses are all in its /64.
        (PROXY, lambda i: f"2001:db8:1:2::{i:x}"),
    ],
    ids=["one address", "forged X-Forwarded-For", "one IPv6 /64 behind the proxy"],
)
def test_one_client_holds_a_few_slots_and_the_shop_is_served(
    shop_server: tuple[BackgroundServer, Guard],
    clients: Clients,
    source: str,
    forwarded_for: Callable[[int], str],
) -> None:
    """The attack: 16 connections announce a body and trickle it, holding every slot for
    the body timeout; the shop's delivery got 503, and WooCommerce disables a webhook after
    5 failed deliveries in a row (`WC_Webhook::failed_delivery`, class-wc-webhook.php).
    Now a client's newcomer takes the place of its own slowest."""
    guard = shop_server[1]
    strangers = [clients.trickler(source, forwarded_for(i)) for i in range(1, SLOTS + 1)]
    evicted = answered(strangers, SLOTS - PER_CLIENT)
    assert guard.held == PER_CLIENT
    shop_delivers(clients)
    settle(strangers, evicted)


@pytest.mark.parametrize("via_proxy", [False, True], ids=["own addresses", "via the proxy"])
def test_strangers_holding_every_slot_give_way_to_the_shop(
    shop_server: tuple[BackgroundServer, Guard], clients: Clients, via_proxy: bool
) -> None:
    """16 addresses, each within its share, hold every slot: the shop's delivery takes the
    place of the slowest of them. Kannel's reports and the ingest API prove who they are in
    their headers and never wait for a slot."""
    guard = shop_server[1]

    def stranger(i: int) -> socket.socket:
        if via_proxy:
            return clients.trickler(PROXY, f"198.51.100.{i}")
        return clients.trickler(f"127.0.1.{i}")

    strangers = [stranger(i) for i in range(1, SLOTS + 1)]
    wait_until(lambda: guard.held == SLOTS)
    if via_proxy:
        shop_delivers(clients, PROXY, "X-Forwarded-For: 203.0.113.5")
    else:
        shop_delivers(clients)
    evicted = answered(strangers, 1)
    assert evicted == strangers[:1]  # all equally slow: the oldest

    report = clients.connect(SHOP)
    report.sendall(request_head("GET", f"/webhooks/kannel/dlr?id=1&status=1&token={TOKEN}", 0))
    assert answer(report)[::2] == (200, b"ok 0/1")
    customer = json.dumps({"id": "c1", "first_name": "Sara", "phone": "09121234567"}).encode()
    api = clients.connect(SHOP)
    api.sendall(
        request_head(
            "POST",
            "/api/v1/customers",
            len(customer),
            "Content-Type: application/json",
            f"Authorization: Bearer {API_TOKEN}",
        )
        + customer
    )
    assert answer(api)[0] == 200
    assert guard.held == SLOTS - 1  # the shop's slot is free again
    settle(strangers, evicted)


@pytest.mark.parametrize("shop_server", [0.0], indirect=True, ids=["no grace"])
def test_a_delivery_arriving_in_pieces_keeps_its_slot_against_slower_newcomers(
    shop_server: tuple[BackgroundServer, Guard], clients: Clients
) -> None:
    """Its bytes come faster than any stranger's, so a stranger's newcomer takes the place
    of another stranger's slot, not the shop's. Without a grace, so that rates decide, not
    which slot is older."""
    guard = shop_server[1]
    strangers = [clients.trickler(f"127.0.1.{i}") for i in range(1, SLOTS + 1)]
    wait_until(lambda: guard.held == SLOTS)
    sent = delivery()
    shop = clients.connect(SHOP)
    shop.sendall(sent[: len(sent) // 2])
    evicted = answered(strangers, 1)
    # Until the shop's first bytes are read its rate is nought, the slowest of all.
    wait_until(lambda: any(slot.received > len(TRICKLED) for slot in guard._slots))
    strangers.append(clients.trickler("127.0.1.100"))
    evicted = answered([*strangers, shop], 2)
    assert evicted == strangers[:2]
    shop.sendall(sent[len(sent) // 2 :])
    assert answer(shop)[::2] == (200, b"ok 1")
    settle(strangers, evicted)


def test_a_delivery_whose_body_follows_its_head_is_spared_while_it_is_on_its_way(
    shop_server: tuple[BackgroundServer, Guard], clients: Clients
) -> None:
    """A client may write the head and the body apart, the body a round trip later: until
    its first bytes it is as slow as can be, yet a stranger's newcomer takes the place of a
    stranger that has begun its body."""
    guard = shop_server[1]
    strangers = [clients.trickler(f"127.0.1.{i}") for i in range(1, SLOTS + 1)]
    wait_until(lambda: guard.held == SLOTS)
    sent = delivery()
    head, _, body = sent.partition(b"\r\n\r\n")
    shop = clients.connect(SHOP)
    shop.sendall(head + b"\r\n\r\n")
    answered(strangers, 1)
    strangers.append(clients.trickler("127.0.1.100"))
    evicted = answered([*strangers, shop], 2)
    assert evicted == strangers[:2]
    shop.sendall(body)
    assert answer(shop)[::2] == (200, b"ok 1")
    settle(strangers, evicted)


def test_heads_without_bodies_do_not_take_the_place_of_a_delivery_being_read(
    shop_server: tuple[BackgroundServer, Guard], clients: Clients
) -> None:
    """A head that announces a body and never sends it costs a stranger a connection and no
    bandwidth. Such heads, renewed within the grace, ranked above every body that had begun,
    however fast: each stranger's newcomer took the place of the shop's half-read delivery.
    Among bodies within the grace the oldest goes, so strangers must bring a newcomer for
    every slot while the shop's body is on the wire."""
    guard = shop_server[1]
    strangers = [clients.connect(f"127.0.1.{i}") for i in range(1, SLOTS + 1)]
    for sock in strangers:
        sock.sendall(head_only())
    wait_until(lambda: guard.held == SLOTS)
    sent = delivery()
    shop = clients.connect(SHOP)
    shop.sendall(sent[: len(sent) // 2])
    evicted = answered(strangers, 1)
    # The shop's first bytes were read: only then is it the one a newcomer would pick.
    wait_until(lambda: any(slot.received for slot in guard._slots))
    newcomer = clients.connect("127.0.1.100")
    newcomer.sendall(head_only())
    evicted = answered([*strangers, shop, newcomer], 2)
    assert evicted == strangers[:2]
    shop.sendall(sent[len(sent) // 2 :])
    assert answer(shop)[::2] == (200, b"ok 1")
    for sock in evicted:
        given_way(sock)
    for sock in [*strangers[2:], newcomer]:
        sock.close()
    wait_until(lambda: guard.held == 0)


def head_only() -> bytes:
    """A stranger's head: a forged signature, a body announced that never comes."""
    return request_head(
        "POST",
        "/webhooks/shop/woocommerce",
        1000,
        "Content-Type: application/json",
        "X-WC-Webhook-Signature: forged",
    )


def test_a_young_slot_is_spared_by_age_not_by_whether_it_has_begun() -> None:
    """Which slot goes, on a clock the test sets (seconds since the loop started): the
    server tests run with a grace longer than themselves, so rates are compared here."""
    grace = 1.0

    async def check() -> None:  # a slot's cancel scope needs an event loop
        now = 100.0
        trickle = _Slot("a", since=90.0, received=10)  # 1 byte/s for 10 s
        fast = _Slot("b", since=95.0, received=50_000)
        headless = _Slot("c", since=98.0)  # a head whose body never came, past the grace
        assert _slowest([fast, trickle], now, grace) is trickle
        assert _slowest([fast, trickle, headless], now, grace) is headless
        # Within the grace nothing is slow yet: a body just begun and a head alone alike, the
        # oldest first, and only when nothing older can go.
        begun = _Slot("shop", since=99.5, received=3_000)
        head = _Slot("d", since=99.7)
        assert _slowest([begun, head, fast], now, grace) is fast
        assert _slowest([head, begun], now, grace) is begun
        assert _slowest([begun, _Slot("e", since=99.2, received=1)], now, grace).client == "e"

    anyio.run(check)
