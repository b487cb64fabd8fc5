"""Run the ASGI app with uvicorn in a background thread: for the daemon and for tests.

The socket is bound here, before uvicorn starts, so port 0 yields a known free port and the
listen backlog is large: Kannel fires delivery reports in bursts and never retries a
callback that found the queue full. uvicorn installs no logging of its own: its error and
access loggers reach Campaigner's handler (masked, JSON when asked), at the levels
`campaigner.logs` sets. The parser is chosen explicitly: httptools with h11's bound on the
head, a time limit on it and the server's other connection limits
(`campaigner.server.protocol`); without httptools the server does not start. The loop is
asyncio's.
uvicorn's proxy headers are off: by default it believes `X-Forwarded-For` from 127.0.0.1,
which lets any local client choose its address; the app decides whom to believe
(`campaigner.server.forwarded`).
Stopping the server says the counts of connections it dropped in the last interval
(`campaigner.server.droplog`), which its loop, stopped, would never say.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp

from campaigner.server.droplog import DropLog
from campaigner.server.protocol import DEFAULT_LIMITS, ConnectionLimits, http_protocol

BACKLOG = 2048

log = logging.getLogger("campaigner.server")


class BackgroundServer:
    """`start()` returns once the server accepts connections; `stop()` shuts it down.

    `drops` is the server's log of the connections it drops (`campaigner.server.droplog`),
    shared with its app's `Guard` so that one line counts both per interval; a new one
    without."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: ConnectionLimits = DEFAULT_LIMITS,
        drops: DropLog | None = None,
    ) -> None:
        self.app = app
        self.limits = limits
        self.drops = drops or DropLog(log)
        self.host = host
        self.requested_port = port
        self.port = 0
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        """Raises CampaignerError, before binding, when httptools is missing."""
        protocol = http_protocol(self.limits, self.drops)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.requested_port))
        sock.listen(BACKLOG)
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            http=protocol,
            loop="asyncio",
            proxy_headers=False,
            log_config=None,
            access_log=True,
            lifespan="off",
            backlog=BACKLOG,
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="webhooks", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"web server on {self.host}:{self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down, then say the counts of the drops its loop still held."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self.drops.stop()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_in_background(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    limits: ConnectionLimits = DEFAULT_LIMITS,
    drops: DropLog | None = None,
) -> BackgroundServer:
    """Start `app` on host:port (0 = any free port); read `.port` for the one bound."""
    return BackgroundServer(app, host=host, port=port, limits=limits, drops=drops).start()
