"""Keep-alive HTTP/1.1 GETs on the standard library, one connection per sending thread.

Kannel takes one message per request, so its sender makes thousands of small GETs whose
query holds the whole percent-encoded text. httpx spent about three times the CPU of
`http.client` on each (it validates and re-parses the long URL several times in Python),
and that CPU was the limit of a drain through a Kannel on the same host. The answer comes
back as an `httpx.Response`, so the gateway reads it as before.

What a failure means is kept as `HttpGateway.request` has it: no connection means nothing
was sent; a request that left and got no (or a garbled) answer may have been sent. Each
request is logged at INFO as httpx logs it, through a logger whose records are masked.
"""

from __future__ import annotations

import http.client
import logging
import select
import socket
import threading
from urllib.parse import urlsplit

import httpx

from campaigner.gateways.base import GatewayError
from campaigner.logs import install_masking
from campaigner.masking import mask

log = logging.getLogger(__name__)
install_masking(__name__)


class PlainGet:
    """GETs to one base URL; each thread keeps its own connection alive between requests."""

    def __init__(self, base_url: str, timeout: float, connect_timeout: float, name: str) -> None:
        parts = urlsplit(base_url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/") + "/"
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.name = name
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def get(self, path_and_query: str) -> httpx.Response:
        """One GET of `path_and_query` (relative to the base URL, already encoded)."""
        connection = self._connection()
        target = self.prefix + path_and_query
        try:
            connection.request("GET", target, headers={"User-Agent": "campaigner"})
        except OSError as exc:  # the request did not leave: refused, reset, unreachable
            connection.close()
            raise GatewayError(self._describe(exc), code="network") from None
        try:
            answer = connection.getresponse()
            body = answer.read()
            headers = answer.getheaders()
            status = answer.status
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise GatewayError(self._describe(exc), code="network", maybe_sent=True) from None
        if answer.will_close:
            connection.close()
        if log.isEnabledFor(logging.INFO):
            url = f"{'https' if self.https else 'http'}://{self.host}:{self.port}{target}"
            log.info('HTTP Request: GET %s "HTTP/1.1 %d %s"', url, status, answer.reason)
        return httpx.Response(status, headers=headers, content=body)

    def close(self) -> None:
        with self._lock:
            for connection in self._all:
                connection.close()
            self._all.clear()

    def _connection(self) -> http.client.HTTPConnection:
        """This thread's connection, connected; one the server closed meanwhile (an idle
        keep-alive it dropped) is opened again before the request, not found dead after."""
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            connection = kind(self.host, self.port, timeout=self.timeout)
            self._local.connection = connection
            with self._lock:
                self._all.append(connection)
        if connection.sock is not None and _closed_by_peer(connection.sock):
            connection.close()
        if connection.sock is None:
            try:
                connection.timeout = self.connect_timeout
                connection.connect()
            except OSError as exc:
                connection.close()
                raise GatewayError(self._describe(exc), code="network") from None
            finally:
                connection.timeout = self.timeout
            if connection.sock is not None:
                connection.sock.settimeout(self.timeout)
        return connection

    def _describe(self, exc: BaseException) -> str:
        detail = mask(str(exc)) or "no detail"
        return f"{self.name}: {type(exc).__name__}: {detail}"


def _closed_by_peer(sock: socket.socket) -> bool:
    """An idle connection is readable only if the server closed it (or sent junk)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
