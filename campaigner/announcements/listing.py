"""An announcement's `customers_file`: a CSV naming customers by external id or phone.

The first column of each line is read; a first line without a digit is a header. A value
that looks like a phone number, written in any form (Persian digits, 0912…, +98…, 0098…),
is matched on the customer's phone; every value is also matched on the external id. A line
that looks like a phone number but is none is a problem named with its line number.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from campaigner.customers.phones import InvalidPhone, normalize_phone, to_ascii_digits
from campaigner.files import Unreadable, read_text_file

MAX_LIST_BYTES = 32 * 1024 * 1024
MAX_VALUE = 128
_PHONE_LIKE = re.compile(r"^\s*(\+|00|0)[\d\s\-().]{6,}$")
MAX_PROBLEMS = 20


@dataclass
class Listing:
    ids: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def read_listing(path: Path, region: str) -> Listing:
    """The customers named in `path`; problems name the line (at most MAX_PROBLEMS, then a
    count)."""
    listing = Listing()
    try:
        text = read_text_file(path, "a customers file", MAX_LIST_BYTES)
    except FileNotFoundError:
        listing.problems.append(f"{path}: file not found")
        return listing
    except (OSError, UnicodeDecodeError, Unreadable) as exc:
        listing.problems.append(f"{path}: cannot read: {exc}")
        return listing
    bad = 0
    for number, row in enumerate(csv.reader(io.StringIO(text.lstrip("\ufeff"))), start=1):
        value = row[0].strip() if row else ""
        if not value:
            continue
        ascii_value = to_ascii_digits(value)
        if number == 1 and not any(ch.isdigit() for ch in ascii_value):
            continue
        problem = _problem(value, ascii_value)
        if problem is None and _PHONE_LIKE.match(ascii_value):
            try:
                listing.phones.add(normalize_phone(value, region))
            except InvalidPhone:
                problem = f"{value!r} looks like a phone number but is not a valid one"
        if problem is not None:
            bad += 1
            if bad <= MAX_PROBLEMS:
                listing.problems.append(f"{path.name} line {number}: {problem}")
            continue
        listing.ids.update({value, ascii_value})
    if bad > MAX_PROBLEMS:
        listing.problems.append(f"{path.name}: {bad - MAX_PROBLEMS} more bad line(s)")
    return listing


def _problem(value: str, ascii_value: str) -> str | None:
    if len(value) > MAX_VALUE:
        return f"longer than {MAX_VALUE} characters"
    if any(not ch.isprintable() for ch in value):
        return "contains control characters"
    return None
