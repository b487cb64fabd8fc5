"""Text that customers, shops or providers wrote, shown in a terminal: seen, never obeyed.

A customer's name arrives from a CSV file, the ingest API or the shop's database, and a
gateway's error from a stranger's server. In a terminal such text must read as it is: not as
rich markup (a name `[/bold]` used to crash `campaigner report`, `[link=…]` drew a hyperlink)
and not as control characters (an escape sequence can recolour, retitle or rewrite the
screen), nor as bidi controls that reorder what follows them. Every command passes such text
through `shown` (plain output) or `rich_text` (rich tables). Persian text, its zero-width
non-joiners and direction marks are kept as they are.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from typing import Any

from rich.text import Text

LINE_BREAK = " ⏎ "


def _visible(code: int) -> str:
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode "control picture": ␛ for ESC, ␍ for CR
    if code == 0x7F:
        return "␡"
    return f"\\x{code:02x}"  # C1 controls (0x9b is an 8-bit escape sequence introducer)


# Bidi embeddings, overrides and isolates (LRE … RLO, LRI … PDI) reorder the text after them,
# past the end of the value when left open: a name with RLO would reverse the rest of its
# table row (the "Trojan Source" trick). They are shown as their code, `\u202e`; the marks
# (LRM, RLM) and ZWNJ, which Persian text needs and which reorder nothing, stay.
BIDI_CONTROLS = (*range(0x202A, 0x202F), *range(0x2066, 0x206A))

_DRAWN = {
    code: _visible(code)
    for code in (*range(0x20), *range(0x7F, 0xA0))
    if code not in (ord("\n"), ord("\t"))
} | {code: f"\\u{code:04x}" for code in BIDI_CONTROLS}
_VISIBLE = {**_DRAWN, ord("\t"): _visible(ord("\t")), ord("\n"): LINE_BREAK}


def shown(value: object) -> str:
    """`value` as one line of inert text: control characters drawn, line breaks as ⏎."""
    text = "" if value is None else str(value)
    return text.replace("\r\n", "\n").translate(_VISIBLE)


def shell_command(words: Sequence[str]) -> str:
    """`words` as a command line to copy from the terminal into a shell, which reads it back
    as `words`, and which `shown` leaves as it is. A word with a character `shown` draws (a
    line break, a tab, a bidi control) or a byte that is no UTF-8 (a file name's) is written
    in $'…' quotes, that character's bytes escaped: in plain quotes its drawing (⏎, ␉,
    \\u202e) would be copied in its place and name another file."""
    return " ".join(_shell_word(word) for word in words)


def _shell_word(word: str) -> str:
    if all(_plain(char) for char in word):
        return shlex.quote(word)
    escaped = "".join(
        char
        if _plain(char) and char not in "\\'"
        else "".join(f"\\x{byte:02x}" for byte in char.encode("utf-8", "surrogateescape"))
        for char in word
    )
    return f"$'{escaped}'"


def _plain(char: str) -> bool:
    """Shown as it is, and text (not an undecodable byte of a file name)."""
    return shown(char) == char and not 0xD800 <= ord(char) <= 0xDFFF


def drawn(text: str) -> str:
    """`text` with its control characters drawn, except line breaks and tabs: for data files
    (a CSV cell may hold several lines) that may still end up printed in a terminal."""
    return text.translate(_DRAWN)


def rich_text(value: object) -> Text:
    """`value` for a rich table or print: never parsed as markup, never highlighted."""
    return Text(shown(value))


# JSON escapes C0 controls itself; DEL, the C1 range and bidi controls stay raw unless asked.
_JSON_ESCAPES = {code: f"\\u{code:04x}" for code in (*range(0x7F, 0xA0), *BIDI_CONTROLS)}


def json_text(data: Any, *, indent: int | None = None) -> str:
    """JSON that keeps Persian readable (no \\u escapes for letters) yet carries no raw
    control character: each one is escaped, which means the same to a JSON reader."""
    return json.dumps(data, ensure_ascii=False, indent=indent).translate(_JSON_ESCAPES)
