"""Time zone names from settings and customer rows: one test of what counts as a zone.

A customer's zone comes from imported data, so an unknown name must not stop planning or
sending; it falls back to the shop's zone. Settings, on the other hand, are checked strictly.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

# ZoneInfoNotFoundError is a KeyError; malformed names raise ValueError, odd paths OSError.
_NOT_A_ZONE = (KeyError, ValueError, OSError)


def check_timezone(value: str) -> str:
    """`value` unchanged if it names a time zone; ValueError otherwise."""
    try:
        ZoneInfo(value)
    except _NOT_A_ZONE:
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


def zone_or(name: str | None, default: str) -> ZoneInfo:
    """The zone called `name`, or `default` (the shop's zone) when it is empty or unknown."""
    try:
        return ZoneInfo(name or default)
    except _NOT_A_ZONE:
        return ZoneInfo(default)
