from campaigner.messages.names import (
    clean_first_name,
    fallback_for,
    first_name_or_fallback,
    plain_words,
)

FALLBACK = {"fa": "مشتری عزیز", "en": "there"}


def test_latin_names_are_trimmed_collapsed_and_title_cased() -> None:
    assert clean_first_name("  james  ") == "James"
    assert clean_first_name("mary   ann") == "Mary Ann"
    assert clean_first_name("OLIVIA") == "Olivia"
    assert clean_first_name("jean-luc") == "Jean-Luc"
    assert clean_first_name("o'brien") == "O'Brien"
    assert clean_first_name("McDonald") == "McDonald"  # mixed case is deliberate: kept
    assert clean_first_name("élodie") == "Élodie"


def test_persian_names_are_left_as_written() -> None:
    assert clean_first_name(" علی ") == "علی"
    assert clean_first_name("محمد   علی") == "محمد علی"  # a compound name stays whole
    assert clean_first_name("امیر\u200cحسین") == "امیر\u200cحسین"  # the zero-width joiner stays
    assert clean_first_name("سید محمد") == "سید محمد"


def test_missing_name_falls_back_per_locale() -> None:
    assert first_name_or_fallback("", "fa", FALLBACK) == "مشتری عزیز"
    assert first_name_or_fallback("   ", "en", FALLBACK) == "there"
    assert first_name_or_fallback(None, "fa_IR", FALLBACK) == "مشتری عزیز"
    assert first_name_or_fallback("", "de", FALLBACK) == "there"
    assert first_name_or_fallback("sara", "fa", FALLBACK) == "Sara"
    assert first_name_or_fallback("محمد علی", "fa", FALLBACK) == "محمد علی"


def test_fallback_lookup() -> None:
    assert fallback_for("en-CA", {"en_CA": "friend", "en": "there"}) == "friend"
    assert fallback_for("de", {}) == ""


def test_control_and_bidi_characters_never_reach_the_sms() -> None:
    """A name `Ali<ESC>[31m` went out in the SMS with its escape sequence, and an RLO left open
    in a name reverses the rest of the message on the customer's phone."""
    assert clean_first_name("Ali\x1b[31mred") == "Ali[31mred"
    assert clean_first_name("\u202eevil") == "Evil"
    assert clean_first_name("Sara\r\nInjected") == "Sara Injected"
    assert clean_first_name("x\u2067y\u2069\x00\x85z") == "Xy Z"
    assert clean_first_name("محمد\u200cعلی\u200f") == "محمد\u200cعلی\u200f"  # ZWNJ, RLM kept
    assert plain_words("Smith\u202b \x07Jr") == ["Smith", "Jr"]
