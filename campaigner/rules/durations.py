"""Durations as marketers write them in rule files: "90s", "15m", "2h", "3d", "1w"."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """A whole number and one unit: s, m, h, d or w."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(
            f"bad duration {text!r}: use a number and a unit, e.g. 90s, 15m, 2h, 3d or 1w"
        )
    amount, unit = int(match.group(1)), match.group(2)
    return timedelta(**{_UNITS[unit]: amount})
