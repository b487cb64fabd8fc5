"""The guard in front of every endpoint, in-process: tokens, Content-Length, unread bodies.

The same guard against raw sockets on a real server: tests/hostile/test_network.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import Message

from campaigner.config import ServerSettings
from campaigner.server.guard import CloseUnread, Guard, Refused, matches_any, read_body


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
