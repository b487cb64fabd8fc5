"""What every endpoint of the daemon checks first: a shared secret, and a bounded body."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from starlette.requests import Request

from campaigner.config import ServerSettings

TOKEN_HEADER = "x-campaigner-token"


class Refused(Exception):
    """The request is answered with `status` and `detail` and changes nothing."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def matches_any(given: str, secrets: Iterable[str]) -> bool:
    """Compared with every secret in constant time (no early exit); empty never matches."""
    offered = given.encode()
    matched = False
    for secret in secrets:
        if secret:
            matched |= hmac.compare_digest(offered, secret.encode())
    return matched and bool(given)


def carries_admin_token(request: Request, server: ServerSettings) -> bool:
    """The webhook token or an API token, in X-Campaigner-Token or as a bearer token; never
    in the query string, which proxies and access logs keep."""
    secrets = [token.get_secret_value() for token in server.api_tokens]
    if server.webhook_token is not None:
        secrets.append(server.webhook_token.get_secret_value())
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
    given = request.headers.get(TOKEN_HEADER) or (
        bearer.strip() if scheme.lower() == "bearer" else ""
    )
    return matches_any(given, secrets)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Refused(400, "bad Content-Length")
        if int(declared) > limit:
            raise Refused(413, f"the body is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Refused(413, f"the body is larger than {limit} bytes")
    return bytes(body)
