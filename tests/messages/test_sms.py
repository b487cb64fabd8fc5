import regex
from hypothesis import given
from hypothesis import strategies as st

from campaigner.messages.sms import _JOINS, SmsMeasure, measure

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


def units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def reference_parts(text: str) -> tuple[str, list[str]]:
    """The encoding and the parts, cut character by character as a sender cuts them: a
    character that does not fit whole in the current part starts the next one. A GSM-7
    character is one code point (an escape pair is never split); a UCS-2 character is a
    grapheme cluster (`regex`'s \\X, Unicode's extended grapheme clusters), cut between its
    code points only when it is longer than a part.

    Checked against Twilio's message-segment-calculator (TwilioDevEd/message-segment-calculator,
    src/libs/SegmentedMessage.ts: the message is split into graphemes (grapheme-splitter),
    `_buildSegments` moves a grapheme that does not fit to the next segment; src/libs/Segment.ts:
    1120 bits a part, of which a 6-octet header in a multi-part message) and Android's
    SmsMessageBase.findNextUnicodePosition (BreakIterator.getCharacterInstance).
    """
    gsm = set(text) <= BASIC | EXTENDED
    if gsm:
        characters = list(text)
        size = {char: 2 if char in EXTENDED else 1 for char in text}
        single, room = 160, 153
    else:
        characters = []
        for cluster in regex.findall(r"\X", text):
            characters += [cluster] if units(cluster) <= 67 else list(cluster)
        size = {char: units(char) for char in characters}
        single, room = 70, 67
    encoding = "gsm7" if gsm else "ucs2"
    if sum(size[char] for char in characters) <= single:
        return encoding, [text]
    parts, used = [""], 0
    for char in characters:
        if used + size[char] > room:
            parts, used = [*parts, ""], 0
        parts[-1] += char
        used += size[char]
    return encoding, parts


def check(text: str) -> None:
    result = measure(text)
    encoding, parts = reference_parts(text)
    assert "".join(parts) == text
    assert (result.encoding, result.segments) == (encoding, len(parts))
    if encoding == "ucs2":
        assert result.units == len(text.encode("utf-16-le")) // 2
    else:
        assert result.units == len(text) + sum(char in EXTENDED for char in text)


@given(st.text(alphabet=sorted(BASIC | EXTENDED), max_size=700))
def test_gsm_texts_match_reference(text: str) -> None:
    check(text)


@given(st.text(alphabet=PERSIAN + EMOJI + "abc {}€", max_size=400))
def test_persian_and_emoji_texts_match_reference(text: str) -> None:
    check(text)


@st.composite
def near_a_boundary(draw: st.DrawFn, pairs: str, single: str, room: int) -> str:
    """Pair characters among single ones, padded to end within two units of a multiple of
    the room per part: where a pair that moves to the next part changes the count."""
    text = draw(st.text(alphabet=pairs + single, min_size=room - 10, max_size=5 * room))
    units = sum(2 if char in pairs else 1 for char in text)
    extra = draw(st.integers(min_value=-2, max_value=2))
    padding = (-units) % room + extra
    return text + single * max(padding, 0)


@given(near_a_boundary("€{", "a", 153))
def test_gsm_escape_pairs_at_part_boundaries_match_reference(text: str) -> None:
    check(text)


@given(near_a_boundary("😀🎂", "س", 67))
def test_surrogate_pairs_at_part_boundaries_match_reference(text: str) -> None:
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


def test_escape_and_surrogate_pairs_never_straddle_parts() -> None:
    # A part holds 153 septets or 67 UTF-16 units; the character that does not fit whole
    # moves to the next part (Twilio's message-segment-calculator does the same).
    assert measure("a" * 152 + "€" + "a" * 152).segments == 3
    assert measure("س" * 66 + "😀" + "س" * 66).segments == 3


def test_a_grapheme_cluster_never_straddles_parts() -> None:
    # 134 units, two parts if cut between code points; Android and Twilio keep a letter with
    # its zero-width non-joiner (می‌خواهم), an emoji with its skin tone and a flag's two
    # regional indicators together, so the second part overflows into a third.
    assert measure("س" * 66 + "ی\u200c" + "س" * 66).segments == 3
    assert measure("س" * 65 + "👍🏽" + "س" * 65).segments == 3
    assert measure("س" * 65 + "🇮🇷" + "س" * 65).segments == 3
    assert measure("س" * 65 + "ی\u200c" + "س" * 67).segments == 2  # the cluster fits whole
    # A cluster longer than a part (a letter under 80 combining marks) is cut between code
    # points, as Android cuts it when a part holds no cluster boundary.
    assert measure("a" + "\u0301" * 80).segments == 2


def test_outside_the_joining_characters_every_code_point_is_a_cluster_of_its_own() -> None:
    # The shortcut for texts without a joining character counts code points as clusters:
    # true of every code point of the Unicode tables `regex` has, one after another.
    singles = "".join(
        char
        for point in range(0x110000)
        if not 0xD800 <= point <= 0xDFFF and not _JOINS.match(char := chr(point))
    )
    assert len(regex.findall(r"\X", singles)) == len(singles)
    assert len(singles) > 1_000_000


@given(
    st.text(
        alphabet=st.characters(exclude_categories=["Cs"]).filter(lambda c: not _JOINS.match(c)),
        min_size=60,
        max_size=400,
    )
)
def test_texts_without_joining_characters_match_reference(text: str) -> None:
    check(text)


def test_persian_with_emoji_but_no_joiner_is_cut_between_code_points() -> None:
    # The birthday wish: Persian, an emoji (a surrogate pair) and digits, no ZWNJ.
    text = "سلام سارا، تولدتان مبارک! 🎂\nهدیه فروشگاه: ۱۵٪ تخفیف با کد BDAY-7K2M9Q تا ۱۵ آذر"
    assert measure(text) == measure(text.replace("🎂", "ab")) == SmsMeasure("ucs2", 80, 2)
    assert measure("س" * 66 + "🎂" + "س" * 66).segments == 3
