"""How a text travels as SMS: GSM-7 or UCS-2, and how many billed parts it takes.

A single Persian letter, emoji or curly quote turns the whole message into UCS-2, which more
than halves the room per part; marketers see the count before a gateway bills it.
"""

from __future__ import annotations

from dataclasses import dataclass

# GSM 03.38 default alphabet (without the escape character itself).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each of these is sent as ESC + character, so it costs two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


@dataclass(frozen=True)
class SmsMeasure:
    encoding: str  # "gsm7" or "ucs2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int


def is_gsm7(text: str) -> bool:
    return all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text)


def measure(text: str) -> SmsMeasure:
    """Encoding, length in units and number of parts; an empty text still takes one part."""
    if is_gsm7(text):
        units = sum(2 if char in GSM7_EXTENSION else 1 for char in text)
        return SmsMeasure("gsm7", units, _segments(units, GSM7_SINGLE, GSM7_PART))
    units = len(text.encode("utf-16-le")) // 2
    return SmsMeasure("ucs2", units, _segments(units, UCS2_SINGLE, UCS2_PART))


def _segments(units: int, single: int, part: int) -> int:
    if units <= single:
        return 1
    return -(-units // part)
