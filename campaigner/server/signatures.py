"""Shop webhook signatures: base64 HMAC-SHA256 of the raw body, as WooCommerce and Shopify sign.

Kept apart from the endpoints so that how a request proves where it came from is one small,
testable thing; the body must be read (bounded, `Guard.unverified_body`) before it can be checked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def sign(body: bytes, secret: str) -> str:
    """The signature a shop sends for `body`: base64(HMAC-SHA256(body, secret))."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signature_matches(body: bytes, secret: str | None, given: str | None) -> bool:
    """Constant-time; no secret configured or no signature given never matches."""
    if not secret or not given:
        return False
    return hmac.compare_digest(sign(body, secret).encode(), given.strip().encode())
