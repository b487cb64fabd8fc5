"""Phone numbers in, E.164 out, whatever digits and prefixes people typed."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import phonenumbers

# Persian (U+06F0..) and Arabic-Indic (U+0660..) digits to ASCII.
_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")


class InvalidPhone(ValueError):
    pass


def to_ascii_digits(text: str) -> str:
    return text.translate(_DIGITS)


def normalize_phone(raw: str, region: str = "IR") -> str:
    """Return `raw` as E.164 (+989121234567) or raise InvalidPhone saying why."""
    return _normalized(raw, region)


@lru_cache(maxsize=65_536)
def _normalized(raw: str, region: str) -> str:
    """Cached: a guest's phone is read twice per order (to know them, then to store them),
    a returning buyer's on each order, and phonenumbers' parsing is most of a sync's cost
    per guest."""
    # Format characters (ZWNJ, direction marks, a BOM) are invisible: a Persian keyboard's
    # half-space between digit groups is no reason to refuse the number.
    visible = "".join(c for c in raw if unicodedata.category(c) != "Cf")
    text = to_ascii_digits(visible).strip()
    if not text:
        raise InvalidPhone("empty phone number")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"invalid phone number {raw!r}: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        # "989121234567" without a plus is common in exports: try it as international.
        if not text.startswith("+"):
            try:
                number = phonenumbers.parse("+" + text, None)
            except phonenumbers.NumberParseException:
                raise InvalidPhone(f"invalid phone number {raw!r}") from None
        if not phonenumbers.is_valid_number(number):
            raise InvalidPhone(f"invalid phone number {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def national_format(e164: str) -> str:
    """'+989121234567' -> '09121234567', as Iranian gateways like it."""
    number = phonenumbers.parse(e164, None)
    return "0" + str(number.national_number) if number.country_code == 98 else e164
