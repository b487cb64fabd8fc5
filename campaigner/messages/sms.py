"""How a text travels as SMS: GSM-7 or UCS-2, and how many billed parts it takes.

A single Persian letter, emoji or curly quote turns the whole message into UCS-2, which more
than halves the room per part; marketers see the count before a gateway bills it.

A long text is cut into parts as carriers cut it: a GSM-7 escape pair (ESC + "€") or a UTF-16
surrogate pair (an emoji) never straddles two parts, it moves whole to the next one. So a part
may hold one unit less than its room, and "units / room per part" undercounts exactly there.
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
        sizes = [2 if char in GSM7_EXTENSION else 1 for char in text]
        return SmsMeasure("gsm7", sum(sizes), _segments(sizes, GSM7_SINGLE, GSM7_PART))
    sizes = [2 if ord(char) > 0xFFFF else 1 for char in text]
    return SmsMeasure("ucs2", sum(sizes), _segments(sizes, UCS2_SINGLE, UCS2_PART))


def _segments(sizes: list[int], single: int, part: int) -> int:
    """Parts for characters of these sizes in units; a character is never split."""
    if sum(sizes) <= single:
        return 1
    if 2 not in sizes:
        return -(-len(sizes) // part)
    parts, used = 1, 0
    for size in sizes:
        if used + size > part:
            parts, used = parts + 1, 0
        used += size
    return parts
