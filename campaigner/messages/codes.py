"""Codes people read off a phone screen and type into a shop: no 0/O, 1/I/L to confuse."""

from __future__ import annotations

import secrets
from collections.abc import Callable

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
# Random bytes from here up are dropped: below it, each character is exactly as likely.
_UNBIASED = 256 - 256 % len(ALPHABET)


def random_code(length: int, source: Callable[[int], bytes] = secrets.token_bytes) -> str:
    """`length` characters from ALPHABET, from the operating system's secure random source.

    One read of the source per code, where `secrets.choice` made one per character (a
    system call each, a third of issuing a coupon).
    """
    chars: list[str] = []
    while len(chars) < length:
        for byte in source(length + 2):
            if byte < _UNBIASED:
                chars.append(ALPHABET[byte % len(ALPHABET)])
                if len(chars) == length:
                    break
    return "".join(chars)
