"""Durations as marketers write them in rule files: "90s", "15m", "2h", "3d", "1w".

Ten years is the longest: anything longer is a typo, and would overflow date arithmetic in
the planner long before it meant anything.
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
MAX_DAYS = 3650
MAX_DURATION = timedelta(days=MAX_DAYS)


def parse_duration(text: str) -> timedelta:
    """A whole number and one unit: s, m, h, d or w; at most 3650d."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(
            f"bad duration {text!r}: use a number and a unit, e.g. 90s, 15m, 2h, 3d or 1w"
        )
    digits, unit = match.group(1).lstrip("0") or "0", match.group(2)
    limit = MAX_DURATION.total_seconds()
    if len(digits) > 12 or int(digits) * _UNIT_SECONDS[unit] > limit:
        raise ValueError(f"too long: at most {MAX_DAYS}d (about ten years), got {text.strip()!r}")
    return timedelta(seconds=int(digits) * _UNIT_SECONDS[unit])
