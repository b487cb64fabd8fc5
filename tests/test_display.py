import io
import json
import unicodedata

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table

from campaigner.display import BIDI_CONTROLS, drawn, json_text, rich_text, shown

MARKUP = st.text(alphabet="[]/\\=@ablinkd:#", max_size=40)


def test_control_characters_are_drawn_not_obeyed() -> None:
    assert shown("\x1b[2J\x1b]8;;https://evil.example\x07x") == "␛[2J␛]8;;https://evil.example␇x"
    assert shown("Sara\rMallory") == "Sara␍Mallory"
    assert shown("line one\nline two\r\n") == "line one ⏎ line two ⏎ "
    assert shown("\x9b31m") == "\\x9b31m"
    assert shown(None) == ""


def test_persian_text_and_its_marks_are_kept() -> None:
    name = "محمد\u200cعلی \u200fرضایی\u200e"  # ZWNJ, RLM, LRM
    assert shown(name) == name


def test_bidi_controls_that_reorder_what_follows_are_shown_as_their_code() -> None:
    """An RLO left open in a name reversed the rest of its table row ("Trojan Source")."""
    assert shown("\u202eevil") == "\\u202eevil"
    assert shown("a\u202bb\u2067c\u2069") == "a\\u202bb\\u2067c\\u2069"
    assert drawn("Sara\u202d") == "Sara\\u202d"
    assert json.loads(json_text({"name": "\u202eevil"})) == {"name": "\u202eevil"}
    assert "\u202e" not in json_text({"name": "\u202eevil"})


@given(st.text())
def test_nothing_shown_is_a_control_character(text: str) -> None:
    assert not [char for char in shown(text) if unicodedata.category(char) == "Cc"]


@given(
    st.text().filter(
        lambda t: not any(unicodedata.category(c) == "Cc" or ord(c) in BIDI_CONTROLS for c in t)
    )
)
def test_text_without_control_characters_is_unchanged(text: str) -> None:
    assert shown(text) == text


@given(st.one_of(MARKUP, st.text(max_size=40)))
def test_rich_shows_the_text_itself_never_markup(text: str) -> None:
    out = io.StringIO()
    console = Console(file=out, width=500, force_terminal=True, color_system=None)
    table = Table("name")
    table.add_row(rich_text(text))
    console.print(rich_text(text), soft_wrap=True)
    console.print(table)
    printed = out.getvalue()
    assert printed.startswith(shown(text).rstrip())
    assert "\x1b]8;" not in printed  # no hyperlink


@given(st.dictionaries(st.text(), st.text()))
def test_json_text_means_the_same_and_carries_no_control_character(data: dict[str, str]) -> None:
    text = json_text(data)
    assert json.loads(text) == data
    assert not [char for char in text if unicodedata.category(char) == "Cc" and char != "\n"]


def test_json_text_keeps_persian_readable() -> None:
    assert json_text({"name": "سارا\x9b"}) == '{"name": "سارا\\u009b"}'
