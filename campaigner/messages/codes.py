"""Codes people read off a phone screen and type into a shop: no 0/O, 1/I/L to confuse."""

from __future__ import annotations

import secrets

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def random_code(length: int) -> str:
    """`length` characters from ALPHABET, from the operating system's secure random source."""
    return "".join(secrets.choice(ALPHABET) for _ in range(length))
