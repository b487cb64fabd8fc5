from hypothesis import given
from hypothesis import strategies as st

from campaigner.messages.sms import measure

# The GSM 03.38 default alphabet by code point 0x00..0x7F (0x1B is the escape), written out
# independently of the implementation's table.
GSM_TABLE = [
    "@", "£", "$", "¥", "è", "é", "ù", "ì", "ò", "Ç", "\n", "Ø", "ø", "\r", "Å", "å",
    "Δ", "_", "Φ", "Γ", "Λ", "Ω", "Π", "Ψ", "Σ", "Θ", "Ξ", None, "Æ", "æ", "ß", "É",
    " ", "!", '"', "#", "¤", "%", "&", "'", "(", ")", "*", "+", ",", "-", ".", "/",
    *"0123456789", ":", ";", "<", "=", ">", "?",
    "¡", *"ABCDEFGHIJKLMNOPQRSTUVWXYZ", "Ä", "Ö", "Ñ", "Ü", "§",
    "¿", *"abcdefghijklmnopqrstuvwxyz", "ä", "ö", "ñ", "ü", "à",
]  # fmt: skip
GSM_ESCAPED = {0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\", 0x3C: "[", 0x3D: "~",
               0x3E: "]", 0x40: "|", 0x65: "€"}  # fmt: skip
BASIC = {char for char in GSM_TABLE if char is not None}
EXTENDED = set(GSM_ESCAPED.values())
PERSIAN = "ابپتثجچحخدذرزژسشصضطظعغفقکگلمنوهیآ ۰۱۲۳۴۵۶۷۸۹،؟\u200c"
EMOJI = "😀🎂🎁👍❤️🇮🇷"


def reference(text: str) -> tuple[str, int, int]:
    """Encoding, units, segments: the textbook rules, computed a second way."""
    if set(text) <= BASIC | EXTENDED:
        septets = 0
        for char in text:
            septets += 2 if char in EXTENDED else 1
        single, part, units, encoding = 160, 153, septets, "gsm7"
    else:
        units = 0
        for char in text:
            units += 2 if ord(char) > 0xFFFF else 1
        single, part, encoding = 70, 67, "ucs2"
    if units <= single:
        return encoding, units, 1
    segments, left = 0, units
    while left > 0:
        segments += 1
        left -= part
    return encoding, units, segments


def check(text: str) -> None:
    result = measure(text)
    assert (result.encoding, result.units, result.segments) == reference(text)


@given(st.text(alphabet=sorted(BASIC | EXTENDED), max_size=700))
def test_gsm_texts_match_reference(text: str) -> None:
    check(text)


@given(st.text(alphabet=PERSIAN + EMOJI + "abc {}€", max_size=400))
def test_persian_and_emoji_texts_match_reference(text: str) -> None:
    check(text)


@given(st.text(max_size=300))
def test_any_text_matches_reference(text: str) -> None:
    check(text)


def test_persian_boundaries() -> None:
    assert measure("س" * 70).segments == 1
    assert measure("س" * 71).segments == 2
    assert measure("س" * 134).segments == 2
    assert measure("س" * 135).segments == 3
    assert measure("س" * 70).encoding == "ucs2"


def test_gsm_boundaries_and_extension_characters() -> None:
    assert measure("a" * 160) == measure("b" * 160)
    assert (measure("a" * 160).encoding, measure("a" * 160).segments) == ("gsm7", 1)
    assert measure("a" * 161).segments == 2
    assert measure("a" * 306).segments == 2
    assert measure("a" * 307).segments == 3
    assert measure("€" * 80).units == 160
    assert measure("€" * 80).segments == 1
    assert measure("{" * 81).segments == 2
    assert measure("Café à Paris").encoding == "gsm7"  # é and à are GSM-7 despite being > 127


def test_emoji_is_two_units_and_forces_ucs2() -> None:
    result = measure("Hi 🎂")
    assert (result.encoding, result.units) == ("ucs2", 5)
    assert measure("🎂" * 35).segments == 1
    assert measure("🎂" * 36).segments == 2


def test_one_persian_letter_makes_the_whole_text_ucs2() -> None:
    assert measure("a" * 100).segments == 1
    assert measure("a" * 100 + "ی").segments == 2
