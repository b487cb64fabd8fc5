import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigner.customers.phones import (
    InvalidPhone,
    iranian_mobile,
    national_format,
    normalize_phone,
    normalize_with_phonenumbers,
)


@pytest.mark.parametrize(
    "raw",
    [
        "09121234567",
        "+989121234567",
        "00989121234567",
        "989121234567",
        "9121234567",
        "۰۹۱۲۱۲۳۴۵۶۷",
        "٠٩١٢١٢٣٤٥٦٧",
        " 0912 123 4567 ",
        "0912-123-4567",
        # Typed on a Persian keyboard or pasted from a right-to-left page: half-spaces
        # (ZWNJ), direction marks and embeddings sit between the digits, unseen.
        "۰۹۱۲\u200c۱۲۳\u200c۴۵۶۷",
        "\u200f0912\u200e123\u200d4567\ufeff",
        "\u202b۰۹۱۲ ۱۲۳ ۴۵۶۷\u202c",
        "0912\u00a0123\u00a04567",
        "(0912) 123-4567",
        "+98 (912) 123 4567",
    ],
)
def test_iranian_formats_normalise(raw: str) -> None:
    assert normalize_phone(raw, "IR") == "+989121234567"


@pytest.mark.parametrize("raw", ["-00989121234567", "(0098) 912 123 4567", "(00 98) 9121234567"])
def test_the_international_prefix_behind_grouping_in_a_region_dialling_011(raw: str) -> None:
    """Found by the agreement test: with `customers.region = "US"` phonenumbers' path read
    only a leading 00 as '+', and refused these; the fast path read them."""
    assert normalize_with_phonenumbers(raw, "US") == "+989121234567"
    assert normalize_phone(raw, "US") == "+989121234567"


def test_other_region() -> None:
    assert normalize_phone("(416) 234-5678", "CA") == "+14162345678"
    assert normalize_phone("+1 416 234 5678", "IR") == "+14162345678"


@pytest.mark.parametrize("raw", ["", "12", "0912", "hello", "+98912123456789"])
def test_invalid(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        normalize_phone(raw, "IR")


def test_national_format() -> None:
    assert national_format("+989121234567") == "09121234567"
    assert national_format("+14162345678") == "+14162345678"


# The written forms of one Iranian mobile number (national number 9xxxxxxxxx).
PREFIXES = ("0", "", "+98", "0098", "98")
SCRIPTS = (str.maketrans("", ""), str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
IRANIAN_TEN_DIGITS = re.compile(r"\+989\d{9}")


def slow_outcome(raw: str, region: str = "IR") -> str | None:
    try:
        return normalize_with_phonenumbers(raw, region)
    except InvalidPhone:
        return None


@st.composite
def written_mobiles(draw: st.DrawFn) -> str:
    national = "9" + draw(st.text(alphabet="0123456789", min_size=9, max_size=9))
    text = draw(st.sampled_from(PREFIXES)) + national
    cuts = draw(st.lists(st.integers(0, len(text)), max_size=4))
    for cut in sorted(cuts, reverse=True):
        text = text[:cut] + draw(st.sampled_from([" ", "-", "(", ")", "  ", " - "])) + text[cut:]
    script = draw(st.sampled_from([*SCRIPTS, ARABIC_INDIC]))
    return draw(st.sampled_from(["", " ", "\t"])) + text.translate(script)


@settings(max_examples=1500, deadline=None)
@given(written_mobiles(), st.sampled_from(["IR", "IR", "DE", "US"]))
def test_fast_path_agrees_with_phonenumbers_on_every_shape(raw: str, region: str) -> None:
    fast = iranian_mobile(raw, region)
    slow = slow_outcome(raw, region)
    assert fast is None or fast == slow, raw
    if region == "IR" and slow and IRANIAN_TEN_DIGITS.fullmatch(slow):
        assert fast == slow, raw  # every shape of a valid Iranian mobile takes the fast path
    assert (normalize_phone(raw, region) if slow else None) == slow


@pytest.mark.slow
def test_fast_path_agrees_with_phonenumbers_on_a_million_numbers() -> None:
    """A million random 9xxxxxxxxx numbers (valid and not), cycling through the written forms
    and digit scripts; phonenumbers decides every one of them the slow way too."""
    rng = random.Random(17)
    fast_hits = 0
    for n in range(1_000_000):
        national = f"9{rng.randrange(10**9):09d}"
        raw = (PREFIXES[n % 5] + national).translate(SCRIPTS[n % 2])
        fast = iranian_mobile(raw)
        slow = slow_outcome(raw)
        if fast is None:
            assert slow is None or not IRANIAN_TEN_DIGITS.fullmatch(slow), raw
        else:
            assert fast == slow, raw
            fast_hits += 1
    assert fast_hits > 100_000  # most of the number space is allocated to mobiles


def test_digits_of_other_scripts_never_reach_the_stored_number() -> None:
    """Regression: the fast path's `\\d` took Devanagari digits for digits and returned
    '+98912१२३…' as if it were E.164; such a number now goes to phonenumbers' own reading."""
    raw = "0912" + "1234567".translate(str.maketrans("0123456789", "०१२३४५६७८९"))
    assert iranian_mobile(raw) is None
    assert normalize_phone(raw) == slow_outcome(raw) == "+989121234567"
