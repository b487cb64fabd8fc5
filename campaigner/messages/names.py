"""First names as a customer wants to read them, and a kind fallback when there is none.

A message must never open with "Dear ," or «سلام ،». Persian names are left exactly as the
shop wrote them (compound names such as «محمد علی» stay whole); Latin names typed in one case
("mary ann", "JAMES") are title-cased, while mixed case such as "McDonald" is kept.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache

_WORD_PART = re.compile(r"([-'’])")
_DROPPED = dict.fromkeys(
    code
    for code in (*range(0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A))
    if chr(code) not in "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85"  # whitespace: splits words
)


@lru_cache(maxsize=65_536)
def clean_first_name(raw: str | None) -> str:
    """Trimmed, spaces collapsed, Latin words in one case title-cased.

    Kept per name: a shop's customers share a few thousand first names, and telling a Latin
    word looks up the Unicode name of each letter, for every message rendered.
    """
    words = plain_words(raw)
    return " ".join(_title_latin(word) for word in words)


def plain_words(raw: str | None) -> list[str]:
    """The words of a name or label from customer data, as an SMS may carry them.

    Line breaks and tabs separate words; other control characters (an escape sequence) and
    bidi embeddings, overrides and isolates are dropped: an RLO left open in a name would
    reverse the rest of the customer's message on their phone. ZWNJ and the direction marks
    (LRM, RLM), which Persian text needs and which reorder nothing, stay.
    """
    text = (raw or "").translate(_DROPPED)
    return text.split()


def first_name_or_fallback(raw: str | None, locale: str, fallback: Mapping[str, str]) -> str:
    """The cleaned first name, or the configured per-locale fallback («مشتری عزیز», "there")."""
    return clean_first_name(raw) or fallback_for(locale, fallback)


def fallback_for(locale: str, table: Mapping[str, str]) -> str:
    """`table[locale]`, else its language ("fa_IR" → "fa"), else English, else nothing."""
    locale = (locale or "").replace("-", "_")
    language = locale.split("_")[0].lower()
    for key in (locale, language, "en"):
        if key in table:
            return table[key]
    return ""


def _title_latin(word: str) -> str:
    if not _is_latin(word) or not (word.islower() or word.isupper()):
        return word
    return "".join(part[:1].upper() + part[1:].lower() for part in _WORD_PART.split(word))


def _is_latin(word: str) -> bool:
    letters = [char for char in word if char.isalpha()]
    return bool(letters) and all(unicodedata.name(char, "").startswith("LATIN") for char in letters)
