"""How a text travels as SMS: GSM-7 or UCS-2, and how many billed parts it takes.

A single Persian letter, emoji or curly quote turns the whole message into UCS-2, which more
than halves the room per part; marketers see the count before a gateway bills it.

A long text is cut into parts as senders cut it: a GSM-7 escape pair (ESC + "€") never
straddles two parts, and a UCS-2 text is cut between user-perceived characters (Unicode
grapheme clusters: a letter with its zero-width non-joiner or marks, an emoji with its skin
tone, a flag), which move whole to the next part, as Android and Twilio cut them. So a part
may hold a few units less than its room, and "units / room per part" undercounts exactly
there. Why graphemes, and what other senders do: docs/templates.md, "How long a message is".
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import regex

# GSM 03.38 default alphabet (without the escape character itself).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each of these is sent as ESC + character, so it costs two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
_GSM7 = GSM7_BASIC | GSM7_EXTENSION

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


@dataclass(frozen=True)
class SmsMeasure:
    encoding: str  # "gsm7" or "ucs2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int


def is_gsm7(text: str) -> bool:
    return _GSM7.issuperset(text)


def measure(text: str) -> SmsMeasure:
    """Encoding, length in units and number of parts; an empty text still takes one part.

    Every message is measured as it is sent, so the common cases take shortcuts: a text
    that fits one part needs no cutting; a GSM-7 text without escape pairs, or a UCS-2
    text in which every code point is a grapheme cluster of its own (no character that
    joins its neighbour: most Persian and English texts), cuts at any character. Finding
    the clusters (`regex`'s \\X) cost more than rendering the message.
    """
    if is_gsm7(text):
        escapes = sum(map(text.count, GSM7_EXTENSION))
        if not escapes:
            return SmsMeasure("gsm7", len(text), _even(len(text), GSM7_SINGLE, GSM7_PART))
        sizes = [2 if char in GSM7_EXTENSION else 1 for char in text]
        return SmsMeasure("gsm7", len(text) + escapes, _segments(sizes, GSM7_SINGLE, GSM7_PART))
    encoded = text.encode(_NATIVE_UTF16, "surrogatepass")
    total = len(encoded) // 2
    if total <= UCS2_SINGLE:
        return SmsMeasure("ucs2", total, 1)
    if _JOINS.search(text) is None:
        if total == len(text):
            return SmsMeasure("ucs2", total, _even(total, UCS2_SINGLE, UCS2_PART))
        return SmsMeasure("ucs2", total, _pair_parts(memoryview(encoded).cast("H")))
    clusters = _GRAPHEME.findall(text)
    if total == len(text):
        sizes = [len(cluster) for cluster in clusters]
    else:
        sizes = [len(cluster.encode("utf-16-le", "surrogatepass")) // 2 for cluster in clusters]
    if max(sizes) > UCS2_PART:
        sizes = [size for cluster in clusters for size in _ucs2_sizes(cluster)]
    return SmsMeasure("ucs2", total, _segments(sizes, UCS2_SINGLE, UCS2_PART))


_GRAPHEME = regex.compile(r"\X")
# UTF-16 in the machine's byte order, read back as 16-bit units without copying.
_NATIVE_UTF16 = f"utf-16-{sys.byteorder[0]}e"
# The characters that can share a grapheme cluster with the one before or after them (UAX
# #29 rules GB3-GB13: CR LF, Hangul syllables, Extend and ZWJ, spacing marks, prepended
# characters, regional indicators), from the same Unicode tables as \X. A text without
# any is cut between code points exactly as between clusters.
_JOINS = regex.compile(
    r"[\r\p{GCB=Extend}\p{GCB=ZWJ}\p{GCB=SpacingMark}\p{GCB=Prepend}"
    r"\p{GCB=Regional_Indicator}\p{GCB=L}\p{GCB=V}\p{GCB=T}\p{GCB=LV}\p{GCB=LVT}]"
)


def _units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _ucs2_sizes(cluster: str) -> list[int]:
    """The UTF-16 units of a grapheme cluster, kept together; one too long for any part (a
    pile of combining marks) is cut between code points, as Android then cuts it."""
    units = _units(cluster)
    return [units] if units <= UCS2_PART else [_units(char) for char in cluster]


def _even(units: int, single: int, part: int) -> int:
    """Parts for `units` characters of one unit each."""
    return 1 if units <= single else -(-units // part)


def _pair_parts(units: memoryview) -> int:
    """UCS-2 parts of these UTF-16 units, cut anywhere but inside a surrogate pair: a part
    that would end on the first half of a pair leaves the pair to the next part."""
    parts, start = 0, 0
    while start < len(units):
        end = start + UCS2_PART
        if end < len(units) and 0xD800 <= units[end - 1] <= 0xDBFF:
            end -= 1
        parts, start = parts + 1, end
    return parts


def _segments(sizes: list[int], single: int, part: int) -> int:
    """Parts for characters of these sizes in units; a character is never split."""
    if sum(sizes) <= single:
        return 1
    if max(sizes) == 1:
        return -(-len(sizes) // part)
    parts, used = 1, 0
    for size in sizes:
        if used + size > part:
            parts, used = parts + 1, 0
        used += size
    return parts
