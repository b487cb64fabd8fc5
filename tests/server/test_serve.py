import httpx
from starlette.applications import Starlette
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
