"""Phone numbers in, E.164 out, whatever digits and prefixes people typed."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import phonenumbers

# Persian (U+06F0..) and Arabic-Indic (U+0660..) digits to ASCII.
_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
# The same, and spaces, dashes and parentheses dropped, as people group a mobile number.
_PLAIN = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789", " -()")
# An Iranian mobile number as typed: 0912…, 912…, +98912…, 0098912… or 98912….
_IRANIAN_MOBILE = re.compile(r"(\+98|0098|98|0)?(9[0-9]{9})")  # [0-9]: \d is any script's digit
_INTERNATIONAL = ("+98", "0098")


_NUMBER_TYPES = (
    "premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan",
    "voicemail", "fixed_line", "mobile",
)  # fmt: skip


def _pattern(description: phonenumbers.PhoneNumberDesc | None) -> str | None:
    """The description's pattern if it admits ten-digit national numbers."""
    if description is None or not description.national_number_pattern:
        return None
    lengths = description.possible_length or ()
    return description.national_number_pattern if not lengths or 10 in lengths else None


def _ir_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """phonenumbers' own patterns for Iran: a ten-digit number matching the general one and a
    number type's is valid in its eyes (`is_valid_number`), so the fast path agrees with it."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("IR")
    general = _pattern(metadata.general_desc) if metadata else None
    types = [_pattern(getattr(metadata, name, None)) for name in _NUMBER_TYPES]
    known = "|".join(f"(?:{pattern})" for pattern in types if pattern)
    return re.compile(general or "(?!)"), re.compile(known or "(?!)")


_IR_GENERAL, _IR_ANY_TYPE = _ir_patterns()


class InvalidPhone(ValueError):
    pass


def to_ascii_digits(text: str) -> str:
    return text.translate(_DIGITS)


def normalize_phone(raw: str, region: str = "IR") -> str:
    """Return `raw` as E.164 (+989121234567) or raise InvalidPhone saying why."""
    # Format characters (ZWNJ, direction marks, a BOM) are invisible: a Persian keyboard's
    # half-space between digit groups is no reason to refuse the number.
    # Digits and ASCII are never format characters: most numbers need no look at each one.
    if raw.isascii() or raw.translate(_DIGITS).isascii():
        visible = raw
    else:
        visible = "".join(c for c in raw if unicodedata.category(c) != "Cf")
    return iranian_mobile(visible, region) or _normalized(visible, region)


def iranian_mobile(raw: str, region: str = "IR") -> str | None:
    """The E.164 form of a plainly written Iranian mobile number, or None if `raw` is not one.

    Most of a shop's customer list looks like this, and phonenumbers' general parser was a
    quarter of a large import. The answer is phonenumbers' own (tests compare both on a
    million numbers): validity is checked against its own metadata patterns for Iran.
    """
    match = _IRANIAN_MOBILE.fullmatch(raw.strip().translate(_PLAIN))
    if match is None:
        return None
    prefix, national = match.groups()
    if region != "IR" and prefix not in _INTERNATIONAL:
        return None  # 0912… or 98912… may mean something else in another region
    if not (_IR_GENERAL.fullmatch(national) and _IR_ANY_TYPE.fullmatch(national)):
        return None
    return "+98" + national


@lru_cache(maxsize=65_536)
def _normalized(raw: str, region: str) -> str:
    """Cached: a guest's phone is read twice per order (to know them, then to store them),
    a returning buyer's on each order, and phonenumbers' parsing is most of a sync's cost
    per guest."""
    return normalize_with_phonenumbers(raw, region)


def normalize_with_phonenumbers(raw: str, region: str = "IR") -> str:
    """`normalize_phone` for any number, through phonenumbers' general parser."""
    text = to_ascii_digits(raw).strip()
    if not text:
        raise InvalidPhone("empty phone number")
    compact = text.translate(_PLAIN)
    if compact.startswith("00"):  # the international call prefix, however grouped: "(00 98) 912…"
        text = "+" + compact[2:]
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
