import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from campaigner.server.serve import serve_in_background


def test_port_zero_binds_a_free_port_and_stop_closes_it() -> None:
    app = Starlette(routes=[Route("/ping", lambda request: PlainTextResponse("pong"))])
    server = serve_in_background(app, port=0)
    try:
        assert server.port > 0
        assert httpx.get(f"{server.url}/ping", timeout=5).text == "pong"
    finally:
        server.stop()
    try:
        httpx.get(f"{server.url}/ping", timeout=2)
        reachable = True
    except httpx.TransportError:
        reachable = False
    assert not reachable


def test_the_app_sees_the_connections_address_not_a_forwarded_one() -> None:
    """uvicorn believes X-Forwarded-For and -Proto from 127.0.0.1 by default; the server
    turns that off so the app alone decides whom to believe."""

    def seen(request: Request) -> PlainTextResponse:
        client = request.client.host if request.client else ""
        return PlainTextResponse(f"{client} {request.url.scheme}")

    with serve_in_background(Starlette(routes=[Route("/who", seen)])) as server:
        answer = httpx.get(
            f"{server.url}/who",
            headers={"x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "https"},
            timeout=5,
        )
    assert answer.text == "127.0.0.1 http"
