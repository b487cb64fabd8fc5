"""The HTTP parser the server runs: httptools (C, llhttp), with the head bounded as h11 bounds it.

Kannel fires two delivery reports per message, each its own request; with the pure-Python
h11 parser, parsing the request and framing the answer was a large share of the daemon's
CPU per report (docs/benchmarks.md, "Delivery reports on httptools"). httptools parses in
C, but unlike h11 (which refuses a request line and headers longer than 16 KiB) it buffers
a head of any length: a stranger could make the daemon hold as much memory as it cares to
send before one header is complete. `BoundedHttpTools` restores h11's bound, answering 431
and closing.

Every bound below lives in that subclass of uvicorn's httptools protocol; uvicorn's h11
protocol has none of them but the head's length (no head timeout, no cap on waiting
connections, no send timeout, no pipelining limit). So without httptools (a declared
dependency, missing only from a broken install) the server does not start, rather than
fall back to h11 and serve without its guarantees: `http_protocol` says so and names the fix.

httptools also sets no time limit on a head: a client sending one byte every few seconds
held its connection for good, and a client could hold as many as it opened (slowloris).
Each connection now has `head_timeout` seconds to deliver a request head whenever the server
is waiting for one (from the connection's opening, and again after each answer); past it,
a connection that sent something is answered 408, one that sent nothing is closed. The timer
is not reset by bytes (empty lines between requests reset uvicorn's keep-alive timer), and
does not run while the app works on an answer. Bodies have their own deadline
(`campaigner.server.guard`). The timer bounds how long one connection waits; how many wait
at once is bounded too (`max_waiting`): past it, the connection that has waited longest is
closed, so a client opening connections faster than they time out takes the place of its
own oldest ones, not every file descriptor the daemon has (which it needs for its database
and gateways too). A real client sends its head at once and is rarely the oldest.

An answer waits in the server's buffers until the client reads it, and uvicorn sets no time
limit on that: a client that sent requests and never read held its connection, its task
and up to 64 KiB of answers for good (a connection closed with answers unread too: asyncio
closes it only once they are sent). So the transport reports any answer bytes the kernel
would not take at once (its high-water mark is 0), and a connection whose client takes none
of them for `send_timeout` seconds is dropped, unread answers and all. A client reading
slowly is not: each byte it takes starts the timer again, as nginx's `send_timeout` does.

uvicorn pauses reading while a pipelined request waits for the one before it, but only
after parsing the whole read, and it reads again after each answer: each answer let one
client queue another 256 KiB of tiny requests (14,000, some 30 MB), and one connection grew
the daemon by 1 GB in 8 s. At most `MAX_PIPELINED` requests wait: past it, the rest of the
read is parsed but not kept, the ones waiting are answered, and the connection is closed
without a word, which tells a pipelining client to send the rest again on a new one
(RFC 9112, 9.3.2).

Each connection dropped by these bounds (head or answer not in time, the longest waiting
closed, too many pipelined requests) goes to the server's `DropLog`: logged in full for the
first few of each reason per interval, counted past them, so a flood of connections is not
a flood of log lines (`campaigner.server.droplog`).

A refusal (431, 408, or 400 for bytes that are not HTTP) is an answer like any other: one
for a pipelined request is written after the answers owed to the requests before it, and
nothing more is read meanwhile.

The event loop stays asyncio's, chosen explicitly (uvicorn's "auto" takes uvloop whenever
it is importable): uvloop made no difference to the CPU per callback that the load on the
test machine did not hide (bench/webhooks.py, 285-316 against 302-322 µs).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from starlette.types import Receive, Scope, Send

from campaigner.config import (
    HEAD_TIMEOUT_SECONDS,
    MAX_WAITING_CONNECTIONS,
    SEND_TIMEOUT_SECONDS,
    ServerSettings,
)
from campaigner.errors import CampaignerError
from campaigner.server.droplog import DropLog
from campaigner.server.forwarded import limit_key

MAX_HEAD_BYTES = 16 * 1024  # h11's default bound on an incomplete request head
MAX_PIPELINED = 100  # requests waiting for the answers before theirs; no real client nears it

log = logging.getLogger("campaigner.server")


def _closing_answer(status: bytes, text: bytes) -> bytes:
    """A whole plain-text answer that ends the connection, for the refusals written to the
    transport directly (no request to answer through the app)."""
    return (
        b"HTTP/1.1 %s\r\n"
        b"content-type: text/plain; charset=utf-8\r\n"
        b"content-length: %d\r\n"
        b"connection: close\r\n\r\n%s"
    ) % (status, len(text), text)


_TOO_LARGE_TEXT = b"Request header fields too large"
_TOO_LARGE = _closing_answer(b"431 Request Header Fields Too Large", _TOO_LARGE_TEXT)
_TIMEOUT = _closing_answer(b"408 Request Timeout", b"Request head not received in time")
_NOT_HTTP = _closing_answer(b"400 Bad Request", b"Invalid HTTP request received.")

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools not installed: the server refuses to start (`http_protocol`)
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

NO_HTTPTOOLS = (
    "the web server needs httptools, which is not installed: without it the server would "
    "run without its limits on slow and idle clients; install it with `pip install httptools` "
    "(in the environment Campaigner runs in)"
)


async def _refuse_head(scope: Scope, receive: Receive, send: Send) -> None:
    """The answer to a complete head past the bound; `connection: close` ends the connection."""
    await send(
        {
            "type": "http.response.start",
            "status": 431,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": _TOO_LARGE_TEXT})


if HttpToolsProtocol is not None:

    class BoundedHttpTools(HttpToolsProtocol):
        """uvicorn's httptools protocol, refusing a head longer than MAX_HEAD_BYTES or slower
        than `head_timeout`, and answering refusals in request order.

        A complete head is measured exactly and answered 431 through the ASGI path. A head
        still incomplete after a read is counted by reads, and the connection answered 431
        and closed once past the bound. The read in which a head begins counts less what it
        is known to hold before it (bodies, and heads parsed whole, at their least framing),
        so the bound is exact to the framing of the requests before it in that read.

        A chunked body's trailers are header lines too, which httptools buffers and uvicorn
        keeps without end. They are counted by the reads after a chunk header with no body
        after it (the last one's). The read holding that chunk header is not counted (it may
        hold much chunk framing, which is not buffered), so the bound is exact to one read:
        asyncio reads at most 256 KiB at once.
        """

        head_timeout = HEAD_TIMEOUT_SECONDS
        send_timeout = SEND_TIMEOUT_SECONDS
        max_waiting = MAX_WAITING_CONNECTIONS
        # The server's connections waiting for a request, longest waiting first: one dict
        # per server (`http_protocol`), used on its event loop only.
        waiting: ClassVar[dict[BoundedHttpTools, None]] = {}
        # The server's log of connections it dropped (`campaigner.server.droplog`).
        drops: ClassVar[DropLog] = DropLog(log)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._in_head = False
            self._began = False
            self._head_bytes = 0
            self._read_before_head = 0
            self._read_parsed = 0
            self._in_body = False
            self._in_trailers = False
            self._chunk_header_read = False
            self._trailer_bytes = 0
            self._head_timer: asyncio.TimerHandle | None = None
            self._heard = False
            self._owed: bytes | None = None
            self._dropping = False  # requests past MAX_PIPELINED are parsed, not kept
            self._send_timer: asyncio.TimerHandle | None = None
            self._unsent = 0

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            # Told of every byte the kernel would not take, not only past 64 KiB: the
            # bytes left when the connection closes must be timed too.
            self.transport.set_write_buffer_limits(high=0)
            self._await_head()

        def connection_lost(self, exc: Exception | None) -> None:
            self._not_waiting()
            self._not_sending()
            super().connection_lost(exc)

        def pause_writing(self) -> None:
            super().pause_writing()
            self._unsent = self.transport.get_write_buffer_size()
            self._send_timer = self.loop.call_later(self.send_timeout, self._send_late)

        def resume_writing(self) -> None:
            self._not_sending()
            super().resume_writing()

        def _not_sending(self) -> None:
            if self._send_timer is not None:
                self._send_timer.cancel()
                self._send_timer = None

        def _send_late(self) -> None:
            unsent = self.transport.get_write_buffer_size()
            if unsent < self._unsent:  # the client took some: it has as long again
                self._unsent = unsent
                self._send_timer = self.loop.call_later(self.send_timeout, self._send_late)
                return
            self.drops.info(
                "answers not taken in time",
                "%s: answer not taken for %gs: connection dropped",
                self._who(),
                self.send_timeout,
                who=self._who(),
            )
            self._send_timer = None
            self.transport.abort()

        def data_received(self, data: bytes) -> None:
            if self._owed is not None:
                return  # refused already: what follows is not read
            self._heard = True
            self._began = self._chunk_header_read = False
            self._read_before_head = self._read_parsed = 0
            super().data_received(data)
            if self.transport.is_closing() or self._owed is not None:
                return
            if self._in_trailers and not self._chunk_header_read:
                self._trailer_bytes += len(data)
            if self._in_head:
                read = len(data) - self._read_before_head if self._began else len(data)
                self._head_bytes = read + (0 if self._began else self._head_bytes)
            if self._head_bytes > MAX_HEAD_BYTES or self._trailer_bytes > MAX_HEAD_BYTES:
                self._too_long()
                self._refuse(_TOO_LARGE, of_current=self._trailer_bytes > MAX_HEAD_BYTES)

        def send_400_response(self, msg: str) -> None:
            """uvicorn's answer to bytes that are not HTTP, in its turn."""
            self._refuse(_NOT_HTTP, of_current=self._in_body)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head = self._began = True
            self._read_before_head = self._read_parsed

        def on_chunk_header(self) -> None:
            self._in_trailers = self._chunk_header_read = True
            self._trailer_bytes = 0

        def on_body(self, body: bytes) -> None:
            if self._dropping:
                return
            self._in_trailers = False
            self._trailer_bytes = 0
            self._read_parsed += len(body)
            super().on_body(body)

        def on_message_complete(self) -> None:
            if self._dropping:
                return
            self._in_body = self._in_trailers = False
            self._trailer_bytes = 0
            super().on_message_complete()

        def on_headers_complete(self) -> None:
            if self._dropping:
                return
            if len(self.pipeline) >= MAX_PIPELINED:
                self.drops.info(
                    "too many pipelined requests",
                    "%s: more than %d pipelined requests: closed after their answers",
                    self._who(),
                    MAX_PIPELINED,
                    who=self._who(),
                )
                self._dropping = True  # for the rest of this read; nothing more is read
                self._refuse(b"", of_current=False)
                return
            self._not_waiting()
            self._in_head = False
            self._in_body = True
            self._head_bytes = 0
            size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
            # The fewest bytes this head can have taken: "GET  HTTP/1.1", "name:value" lines.
            least = sum(len(name) + len(value) + 3 for name, value in self.headers)
            self._read_parsed += len(self.url) + 17 + least
            if size <= MAX_HEAD_BYTES:
                super().on_headers_complete()
                return
            self._too_long()
            app, self.app = self.app, _refuse_head
            try:
                super().on_headers_complete()
            finally:
                self.app = app

        def on_response_complete(self) -> None:
            started_next = bool(self.pipeline)
            super().on_response_complete()
            if self.transport.is_closing() or started_next:
                return
            if self._owed is not None:
                self.transport.write(self._owed)
                self.transport.close()
            else:
                self._await_head()

        def _refuse(self, answer: bytes, *, of_current: bool) -> None:
            """Answer `answer` and close, once every request before the refused one is
            answered. `of_current`: the refused request is the one whose head came last (its
            body or trailers are at fault), not a next one whose head is incomplete."""
            if of_current:
                queued = [entry for entry in self.pipeline if entry[0] is self.cycle]
                for entry in queued:
                    self.pipeline.remove(entry)
                earlier_pending = bool(queued)
            else:
                earlier_pending = self.cycle is not None and not self.cycle.response_complete
            if not earlier_pending:
                self.transport.write(answer)
                self.transport.close()
                return
            self._owed = answer
            self.transport.pause_reading()

        def _await_head(self) -> None:
            self._heard = self._in_head  # a pipelined head may have begun during the answer
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_late)
            self.waiting[self] = None
            if len(self.waiting) > self.max_waiting:
                longest = next(iter(self.waiting))
                self.drops.info(
                    "waiting longest past max_waiting_connections",
                    "more than %d connections waiting for a request: the longest waiting "
                    "(%s) closed",
                    self.max_waiting,
                    longest._who(),
                    who=longest._who(),
                )
                longest._close_waiting()

        def _not_waiting(self) -> None:
            """Off the head timer and the waiting connections: a head has come, or the
            connection is gone."""
            self.waiting.pop(self, None)
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_late(self) -> None:
            if self._heard and not self.transport.is_closing():
                self.drops.info(
                    "request heads not received in time",
                    "%s: request head not received within %gs: refused",
                    self._who(),
                    self.head_timeout,
                    who=self._who(),
                )
            self._close_waiting()

        def _too_long(self) -> None:
            self.drops.warning(
                "request heads too long",
                "%s: request head longer than %d bytes: refused",
                self._who(),
                MAX_HEAD_BYTES,
                who=self._who(),
            )

        def _who(self) -> str:
            """The client as the per-client limits count it (an IPv6 client's /64): the
            peer, as nothing forwarded is read yet (a proxy's clients are the proxy)."""
            return limit_key(self.client[0]) if self.client else "unknown"

        def _close_waiting(self) -> None:
            """Close this connection that waits for a request: 408 if one has begun."""
            self._not_waiting()
            if self.transport.is_closing():
                return
            if self._heard:
                self.transport.write(_TIMEOUT)
            self.transport.close()


@dataclass(frozen=True)
class ConnectionLimits:
    """What one server allows a client: the `server.*_seconds` and
    `server.max_waiting_connections` settings, or shorter ones in tests."""

    head_timeout: float = HEAD_TIMEOUT_SECONDS
    max_waiting: int = MAX_WAITING_CONNECTIONS
    send_timeout: float = SEND_TIMEOUT_SECONDS

    @classmethod
    def of(cls, server: ServerSettings) -> ConnectionLimits:
        return cls(
            head_timeout=server.head_timeout_seconds,
            max_waiting=server.max_waiting_connections,
            send_timeout=server.send_timeout_seconds,
        )


DEFAULT_LIMITS = ConnectionLimits()


def http_protocol(
    limits: ConnectionLimits = DEFAULT_LIMITS, drops: DropLog | None = None
) -> type[asyncio.Protocol]:
    """What uvicorn's `http` setting gets: the bounded httptools protocol with these limits
    (uvicorn builds each connection's protocol itself, so the limits, and the one server's
    waiting connections and log of dropped ones, `drops` or a new one, ride on a subclass
    of its own).

    Raises CampaignerError when httptools is not installed: uvicorn's h11 fallback has none
    of these limits."""
    if HttpToolsProtocol is None:
        raise CampaignerError(NO_HTTPTOOLS)
    bounds = {
        "head_timeout": limits.head_timeout,
        "send_timeout": limits.send_timeout,
        "max_waiting": limits.max_waiting,
        "waiting": {},
        "drops": drops or DropLog(log),
    }
    return type("BoundedHttpTools", (BoundedHttpTools,), bounds)
