"""Keep-alive HTTP/1.1 GETs on a raw socket, one connection per sending thread.

Kannel takes one message per request, so its sender makes thousands of small GETs whose
query holds the whole percent-encoded text, and their CPU was a quarter of a drain through
a Kannel on the same host. httpx spent about three times the CPU of `http.client` on each;
`http.client` in turn spent most of its 0.2 ms building header lines one call at a time and
parsing the answer's headers with the email package. Here a request is one bytes string
sent with one call, and only what the gateway needs is read from the answer: the status
line, `Content-Length` (or chunks, or the body up to the close) and whether the server
keeps the connection.

What a failure means is kept as `HttpGateway.request` has it: no connection (or a request
that could not be written) means nothing was sent; a request that left and got no (or a
garbled) answer may have been sent. Each request is logged at INFO as httpx logs it,
through a logger whose records are masked.
"""

from __future__ import annotations

import logging
import select
import socket
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from campaigner.gateways.base import GatewayError
from campaigner.logs import install_masking
from campaigner.masking import mask

log = logging.getLogger(__name__)
install_masking(__name__)

MAX_HEAD = 65536  # an answer's status line and headers; a gateway's are a few hundred bytes
MAX_BODY = 1 << 20


class BadAnswer(Exception):
    """The bytes that came back are not an HTTP/1.x answer we can frame."""


@dataclass(frozen=True, slots=True)
class PlainAnswer:
    """A gateway's answer: the few things a sender reads, without building an httpx object
    for every accepted message."""

    status_code: int
    reason: str
    headers: list[tuple[str, str]]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def to_httpx(self) -> httpx.Response:
        """The full response, for the rare answers whose error is read in detail."""
        return httpx.Response(self.status_code, headers=self.headers, content=self.content)


class _Connection:
    """One socket and what was read past the last answer."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.closed = False
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)

    def closed_by_peer(self) -> bool:
        """An idle connection is readable only if the server closed it (or sent junk)."""
        return self.closed or bool(self.buffer) or bool(self._poll.poll(0))

    def close(self) -> None:
        self.closed = True
        self.sock.close()

    def answer(self) -> tuple[PlainAnswer, bool]:
        """The next final answer on this connection (an interim 1xx one is passed over), and
        whether the server keeps the connection open."""
        while True:
            answer, keep = self._one_answer()
            if not 100 <= answer.status_code < 200:
                return answer, keep

    def _one_answer(self) -> tuple[PlainAnswer, bool]:
        head = self._read_head()
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise BadAnswer(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        headers: list[tuple[str, str]] = []
        length: int | None = None
        chunked = False
        keep = version != "HTTP/1.0"
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise BadAnswer(f"not a header line: {line[:80]!r}")
            name, value = name.strip(), value.strip()
            headers.append((name, value))
            lowered = name.lower()
            if lowered == "content-length":
                if not value.isdigit() or int(value) > MAX_BODY:
                    raise BadAnswer(f"bad Content-Length: {value[:40]!r}")
                length = int(value)
            elif lowered == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif lowered == "connection":
                tokens = value.lower()
                keep = "close" not in tokens and (keep or "keep-alive" in tokens)
        status = int(code)
        if status in (204, 304) or 100 <= status < 200:
            body = b""
        elif chunked:
            body = self._read_chunked()
        elif length is not None:
            body = self._read_exactly(length)
        else:  # framed by the close: read it all, and the connection is done
            body = self._read_to_close()
            keep = False
        return PlainAnswer(status, reason, headers, body), keep

    def _read_head(self) -> bytes:
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
                return head
            if len(self.buffer) > MAX_HEAD:
                raise BadAnswer("headers too long")
            self._fill()

    def _read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        body, self.buffer = self.buffer[:size], self.buffer[size:]
        return body

    def _read_line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > MAX_HEAD:
                raise BadAnswer("chunk size line too long")
            self._fill()
        line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
        return line

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size_text = self._read_line().split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise BadAnswer(f"bad chunk size: {size_text[:20]!r}") from None
            if size == 0:
                while self._read_line():  # trailers, up to the empty line
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                raise BadAnswer("body too long")
            parts.append(self._read_exactly(size))
            if self._read_exactly(2) != b"\r\n":
                raise BadAnswer("chunk not followed by CRLF")

    def _read_to_close(self) -> bytes:
        while True:
            data = self.sock.recv(65536)
            if not data:
                body, self.buffer = self.buffer, b""
                return body
            self.buffer += data
            if len(self.buffer) > MAX_BODY:
                raise BadAnswer("body too long")

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionResetError("the server closed the connection before answering")
        self.buffer += data


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
        host = self.host if ":" not in self.host else f"[{self.host}]"
        default_port = 443 if self.https else 80
        authority = host if self.port == default_port else f"{host}:{self.port}"
        # Everything after the request target, the same for every request.
        self._tail = (
            f" HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: campaigner\r\n"
            "Accept-Encoding: identity\r\n\r\n"
        ).encode("ascii")
        self._context = ssl.create_default_context() if self.https else None
        self._local = threading.local()
        self._all: list[_Connection] = []
        self._lock = threading.Lock()

    def get(self, path_and_query: str) -> PlainAnswer:
        """One GET of `path_and_query` (relative to the base URL, already encoded)."""
        target = self.prefix + path_and_query
        try:
            request = b"GET " + target.encode("ascii") + self._tail
        except UnicodeEncodeError:
            raise GatewayError(f"{self.name}: a request target must be encoded") from None
        connection = self._connection()
        try:
            connection.sock.sendall(request)
        except OSError as exc:  # the request did not leave: refused, reset, unreachable
            self._drop(connection)
            raise GatewayError(self._describe(exc), code="network") from None
        try:
            answer, keep = connection.answer()
        except (OSError, BadAnswer) as exc:
            self._drop(connection)
            raise GatewayError(self._describe(exc), code="network", maybe_sent=True) from None
        if not keep:
            self._drop(connection)
        if log.isEnabledFor(logging.INFO):
            url = f"{'https' if self.https else 'http'}://{self.host}:{self.port}{target}"
            log.info(
                'HTTP Request: GET %s "HTTP/1.1 %d %s"', url, answer.status_code, answer.reason
            )
        return answer

    def close(self) -> None:
        with self._lock:
            for connection in self._all:
                connection.close()
            self._all.clear()

    def _connection(self) -> _Connection:
        """This thread's connection, connected; one the server closed meanwhile (an idle
        keep-alive it dropped) is opened again before the request, not found dead after."""
        connection: _Connection | None = getattr(self._local, "connection", None)
        if connection is not None and connection.closed_by_peer():
            self._drop(connection)
            connection = None
        if connection is None:
            try:
                sock = socket.create_connection((self.host, self.port), self.connect_timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self._context is not None:
                    sock = self._context.wrap_socket(sock, server_hostname=self.host)
            except OSError as exc:
                raise GatewayError(self._describe(exc), code="network") from None
            sock.settimeout(self.timeout)
            connection = _Connection(sock)
            self._local.connection = connection
            with self._lock:
                self._all.append(connection)
        return connection

    def _drop(self, connection: _Connection) -> None:
        connection.close()
        self._local.connection = None
        with self._lock:
            if connection in self._all:
                self._all.remove(connection)

    def _describe(self, exc: BaseException) -> str:
        detail = mask(str(exc)) or "no detail"
        return f"{self.name}: {type(exc).__name__}: {detail}"
