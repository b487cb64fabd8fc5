"""What every endpoint of the daemon checks first: who is calling, then a bounded body.

A stranger must not be able to make the daemon hold memory or connections. So a caller
proves who it is in its headers or query string before one byte of its body is read, and
`Guard.body` serves only such callers. A provider whose proof is a signature over the body
(Twilio, shop webhooks) gets `Guard.unverified_body`: one of a few slots, beyond which it
is answered 503 at once. Every read has a deadline, so a slow client
cannot hold a request open, and a client that goes away mid-body is one log line.
`CloseUnread` closes the connection of any answer that left a body unread, so a refused
client cannot go on trickling it in.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable, Mapping

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from campaigner.config import ServerSettings

log = logging.getLogger("campaigner.server")

# More digits than any body limit could need; int() of a longer header is refused early.
_MAX_LENGTH_DIGITS = 18
TOKEN_HEADER = "x-campaigner-token"


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


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` bytes and with
    408 when it has not arrived whole within `timeout` seconds."""
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
    except TimeoutError:
        log.info("%s %s: body not received within %gs", request.method, request.url.path, timeout)
        raise Refused(408, f"the body did not arrive within {timeout:g} seconds") from None
    except ClientDisconnect:
        log.info("%s %s: the client went away mid-body", request.method, request.url.path)
        raise Refused(400, "the client went away") from None
    return bytes(body)


class Guard:
    """The body limits of one server, shared by all its endpoints.

    Endpoints run on the server's one event loop, so the count of unverified reads needs
    no lock.
    """

    def __init__(self, server: ServerSettings) -> None:
        self.max_body_bytes = server.max_body_bytes
        self.timeout = server.body_timeout_seconds
        self.max_unverified = server.max_unverified_requests
        self.unverified = 0

    async def body(self, request: Request) -> bytes:
        """The body of a request whose caller has already proved who it is."""
        return await read_body(request, self.max_body_bytes, self.timeout)

    async def unverified_body(self, request: Request) -> bytes:
        """The body of a request whose proof is a signature over that very body: check the
        signature header is there first, then read with this, then verify. At most
        `max_unverified` such bodies are held at once, so strangers can make the server
        hold no more than that many times the body limit."""
        if self.unverified >= self.max_unverified:
            raise Refused(503, "too many unverified requests at once", {"Retry-After": "1"})
        self.unverified += 1
        try:
            return await read_body(request, self.max_body_bytes, self.timeout)
        finally:
            self.unverified -= 1


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
