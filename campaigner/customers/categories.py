"""Product categories of a line item, stored in one text column as ",tea,summer shoes,".

Stored like customer tags (folded as a rule file's names are, `category_key`: NFKC, Arabic ي/ك
as Persian ی/ک, lower case, single spaces; sorted, each once) so a category test stays a
parameterised LIKE on any database: `categories LIKE '%,' || :name || ',%'`, with the name
stored as `stored_name` writes it. A name may hold a comma itself (a WooCommerce term
«Tea, Coffee & Co», `;` and `|` alike): there `,` is written `%2C` and `%` is written `%25`,
so one category never reads back as two. Sorted (by character code), the first
category (a template's `.category`) is the same whichever order a shop sent them in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote

from campaigner.products.categories import category_key, folded

_SEPARATOR = re.compile(r"(?<!\\),|[;|]")  # a comma unless escaped


def stored_name(name: str, *, whole: bool = False) -> str:
    """One category as it is stored between the commas; `whole` keeps a name longer than
    the column, for `customers.widths` to cut and say so."""
    key = folded(name) if whole else category_key(name)
    return key.replace("%", "%25").replace(",", "%2C")


def store(names: Iterable[str], *, whole: bool = False) -> str:
    """Category names (each one whole, whatever it contains) as the column's text."""
    unique = sorted({stored_name(name, whole=whole) for name in names} - {""})
    return "," + ",".join(unique) + "," if unique else ""


def split_text(value: str) -> list[str]:
    """A list written as text (`summer, shoes`; `;` and `|` also separate): its names.

    `\\,` is a comma inside a name, as WooCommerce's CSV export writes «Tea\\, Coffee & Co»
    (and its importer reads it back); split there, the name would become `tea\\` and a
    second, made-up category."""
    return [name.replace("\\,", ",") for name in _SEPARATOR.split(value)]


def names(stored: str) -> tuple[str, ...]:
    """The column's text as the category names, as a template shows them."""
    return tuple(unquote(part) for part in stored.split(",") if part)
