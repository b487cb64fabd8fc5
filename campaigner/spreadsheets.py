"""CSV files that a marketer opens in Excel: a value from customer data stays text.

A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` (or a tab or carriage return)
as a formula: `=HYPERLINK(…)` in a customer's name becomes a link to anywhere, and `+cmd|…`
used to start programs. As OWASP recommends (CSV Injection), such a cell gets a leading
apostrophe, which spreadsheets read as "this is text"; a plain number (`-12.5`, the phone
`+989121234567`) is left alone. Every field is quoted too, so a separator inside a value (";"
is Excel's separator in many locales) can never start a new cell with a formula. Control
characters other than line breaks and tabs are drawn (␛), as in the terminal: no spreadsheet
shows them, and a CSV printed by `report --format csv` must not drive the terminal.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any, TextIO

from campaigner.display import drawn

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def cell(value: object) -> str:
    """The text to write for `value`; None is an empty cell."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_START) and not _NUMBER.fullmatch(text):
        text = "'" + text
    return drawn(text)


class SpreadsheetWriter:
    """`csv.writer` whose every cell goes through `cell`."""

    def __init__(self, handle: TextIO, **options: Any) -> None:
        self._writer = csv.writer(handle, quoting=csv.QUOTE_ALL, **options)

    def writerow(self, values: Iterable[object]) -> None:
        self._writer.writerow([cell(value) for value in values])
