"""What every endpoint of the daemon checks first: who is calling, then a bounded body.

A stranger must not be able to make the daemon hold memory or connections. So a caller
proves who it is in its headers or query string before one byte of its body is read, and
`Guard.body` serves only such callers. A provider whose proof is a signature over the body
(Twilio, shop webhooks) gets `Guard.unverified_body`: one of a few slots, so strangers can
make the server hold only that many bodies. Every read has a deadline, so a slow client
cannot hold a request open, and a client that goes away mid-body is one log line.
`CloseUnread` closes the connection of any answer that left a body unread, so a refused
client cannot go on trickling it in.

Slots must not be a prize strangers can keep: a shop disables a webhook after a few failed
deliveries in a row (WooCommerce after 5), so a stranger who held every slot with bodies
trickled in would silently turn the shop's webhooks off. So a newcomer is never turned
away: one client (an address, an IPv6 /64: `forwarded.limit_key`) holds at most
`PER_CLIENT` slots and its newcomer takes the place of its own slowest, and when all are
taken the newcomer takes the place of the slowest of all (fewest bytes per second since it
got its slot; the oldest among equals), which is answered 503. A shop's delivery arrives
whole at once and is read before anyone can take its place; holding a slot against it
takes a faster body on every slot, that is bandwidth, not patience. A slot is spared for
`GRACE_SECONDS` while there are older ones to give up, begun or not: its first bytes may be
a packet behind its head, and its rate means nothing yet; among young slots the oldest goes,
so taking a young delivery's place takes a newcomer for every slot. There is no minimum
rate: a stranger would keep a slot by sending just above it, and a provider on a slow link
would lose one on a quiet server; a slow body gives way only to a request that needs its
slot. Many addresses are still many clients: that limit is the reverse proxy's
(docs/operations.md).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from campaigner.config import ServerSettings, Settings
from campaigner.server import forwarded
from campaigner.server.droplog import DropLog

log = logging.getLogger("campaigner.server")

# More digits than any body limit could need; int() of a longer header is refused early.
_MAX_LENGTH_DIGITS = 18
TOKEN_HEADER = "x-campaigner-token"
# Unverified bodies one client reads at once: a shop's deliveries each take a moment, so a
# few cover its bursts, and one address cannot take many slots from the others.
PER_CLIENT = 4
# A body not begun this long after its head is on its way, not slow: a client may send head
# and body in two writes, and the second may wait a round trip for the first's ACK (Nagle).
GRACE_SECONDS = 1.0
# Where a body read outside a Guard (a test) says it did not come.
_DROPS = DropLog(log)


class Refused(Exception):
    """The request is answered with `status` and `detail` and changes nothing."""

    def __init__(self, status: int, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})


def matches_any(given: str, secrets: Iterable[str]) -> bool:
    """Compared with every secret in constant time (no early exit); empty never matches."""
    offered = given.encode("utf-8", "surrogatepass")
    matched = False
    for secret in secrets:
        if secret:
            matched |= hmac.compare_digest(offered, secret.encode("utf-8", "surrogatepass"))
    return matched and bool(given)


def carries_admin_token(request: Request, server: ServerSettings) -> bool:
    """The shared webhook token or an API token, in X-Campaigner-Token or as a bearer token;
    never in the query string, which proxies and access logs keep."""
    secrets = [token.get_secret_value() for token in server.api_tokens]
    if server.webhook_token is not None:
        secrets.append(server.webhook_token.get_secret_value())
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    given = request.headers.get(TOKEN_HEADER) or (
        bearer.strip() if scheme.lower() == "bearer" else ""
    )
    return matches_any(given, secrets)


async def read_body(
    request: Request,
    limit: int,
    timeout: float,
    progress: Callable[[int], None] | None = None,
    drops: DropLog | None = None,
    who: str = "",
) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` bytes and with
    408 when it has not arrived whole within `timeout` seconds; `progress` is told the bytes
    received so far after each chunk, `drops` (the server's) of a body that did not come
    from client `who`."""
    drops = drops or _DROPS
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise Refused(400, "bad Content-Length")
        if len(declared) > _MAX_LENGTH_DIGITS or int(declared) > limit:
            raise Refused(413, f"the body is larger than {limit} bytes")
    if not _has_body(request.scope):
        return b""  # a GET callback (Kannel's reports): no timer to arm, nothing to read
    body = bytearray()
    try:
        with anyio.fail_after(timeout):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise Refused(413, f"the body is larger than {limit} bytes")
                if progress is not None:
                    progress(len(body))
    except TimeoutError:
        drops.info(
            "bodies not received in time",
            "%s %s: body not received within %gs from %s",
            request.method,
            request.url.path,
            timeout,
            who,
            who=who,
        )
        raise Refused(408, f"the body did not arrive within {timeout:g} seconds") from None
    except ClientDisconnect:
        drops.info(
            "clients gone mid-body",
            "%s %s: the client %s went away mid-body",
            request.method,
            request.url.path,
            who,
            who=who,
        )
        raise Refused(400, "the client went away") from None
    return bytes(body)


@dataclass(eq=False)
class _Slot:
    """An unverified body being read: whose, since when (event-loop seconds), how far."""

    client: str
    since: float
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    received: int = 0

    def received_bytes(self, count: int) -> None:
        self.received = count


def _slowest(slots: Sequence[_Slot], now: float, grace: float) -> _Slot:
    """The slot to give up: of those held for `grace` at least, the fewest bytes per second
    since it was taken (the oldest among equals); only when all are younger, the oldest.

    A young slot's rate says nothing yet: a delivery's first bytes may be a round trip
    behind its head, and a head with no body costs a stranger nothing. Had a young head
    without bytes been spared against a body already begun, a stranger renewing such heads
    would take the place of any delivery caught mid-body."""

    def standing(slot: _Slot) -> tuple[bool, float, float]:
        age = now - slot.since
        if age < grace:
            return (True, slot.since, 0.0)
        return (False, slot.received / age, slot.since)

    return min(slots, key=standing)


class Guard:
    """The body limits of one server, shared by all its endpoints.

    Endpoints run on the server's one event loop, so the slots need no lock. `proxies` are
    `[console] trusted_proxies`: behind them a client is the address they forward.
    """

    def __init__(
        self, server: ServerSettings, proxies: Sequence[str] = (), grace: float = GRACE_SECONDS
    ) -> None:
        self.max_body_bytes = server.max_body_bytes
        self.timeout = server.body_timeout_seconds
        self.max_unverified = server.max_unverified_requests
        self.proxies = forwarded.networks(proxies)
        self.grace = grace
        self.drops = DropLog(log)
        self._slots: list[_Slot] = []

    @classmethod
    def of(cls, settings: Settings) -> Guard:
        """The guard `settings` describe: [server]'s limits, [console]'s trusted proxies."""
        return cls(settings.server, settings.console.trusted_proxies)

    @property
    def held(self) -> int:
        """Unverified bodies being read now."""
        return len(self._slots)

    async def body(self, request: Request) -> bytes:
        """The body of a request whose caller has already proved who it is."""
        return await read_body(
            request, self.max_body_bytes, self.timeout, drops=self.drops, who=self.client(request)
        )

    async def unverified_body(self, request: Request) -> bytes:
        """The body of a request whose proof is a signature over that very body: check the
        signature header is there first, then read with this, then verify. At most
        `max_unverified` such bodies are held at once, so strangers can make the server
        hold no more than about that many times the body limit; a body whose slot a
        newcomer took is refused with 503 and its connection closed."""
        slot = _Slot(self.client(request), anyio.current_time())
        self._admit(slot)
        try:
            with slot.scope:
                return await read_body(
                    request,
                    self.max_body_bytes,
                    self.timeout,
                    slot.received_bytes,
                    self.drops,
                    slot.client,
                )
            self.drops.info(
                "slots given to a newer request",
                "%s %s: %d bytes in %.1fs from %s, slot given to a newer request",
                request.method,
                request.url.path,
                slot.received,
                anyio.current_time() - slot.since,
                slot.client,
                who=slot.client,
            )
            raise Refused(503, "too many unverified requests at once", {"Retry-After": "1"})
        finally:
            if slot in self._slots:
                self._slots.remove(slot)

    def client(self, request: Request) -> str:
        """Who a per-client limit counts the request as (see `forwarded`)."""
        peer = request.client.host if request.client else ""
        said = ", ".join(request.headers.getlist("x-forwarded-for"))
        return forwarded.limit_key(forwarded.client_address(peer, said, self.proxies))

    def _admit(self, slot: _Slot) -> None:
        own = [held for held in self._slots if held.client == slot.client]
        if len(own) >= PER_CLIENT:
            self._give_up(_slowest(own, slot.since, self.grace))
        elif len(self._slots) >= self.max_unverified:
            self._give_up(_slowest(self._slots, slot.since, self.grace))
        self._slots.append(slot)

    def _give_up(self, slot: _Slot) -> None:
        # Its task is waiting for body bytes (this one is running): it wakes cancelled.
        self._slots.remove(slot)
        slot.scope.cancel()


class CloseUnread:
    """ASGI middleware: an answer sent before the request body was read whole says
    `Connection: close`, so the server drops the connection instead of reading on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        finished = False

        async def tracking_receive() -> Message:
            nonlocal finished
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                finished = True
            return message

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not finished:
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, tracking_receive, closing_send)


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False
