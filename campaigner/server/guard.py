"""What every endpoint of the daemon checks first: a shared secret, and a bounded body."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from starlette.requests import Request


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
