"""Category names as they are compared and stored.

A shop names categories freely («چای و دمنوش», "Tea, Coffee & Cocoa"). Names are folded once,
the same way for a shop's data (`customers.categories.store`) and a rule file, so
`categories = ["Tea"]` finds what the shop called "tea ".
"""

from __future__ import annotations

import unicodedata

MAX_CATEGORY = 255


def category_key(name: str) -> str:
    """The folded name: NFKC, Arabic ي/ك as Persian ی/ک, lower case, single spaces; cut to
    the column (`MAX_CATEGORY`), so a rule naming a long category matches what was stored."""
    return folded(name)[:MAX_CATEGORY]


def folded(name: str) -> str:
    """`category_key` whole: a shop's data is fitted to the column with a warning
    (`customers.widths`), never cut without one."""
    text = unicodedata.normalize("NFKC", name).replace("ي", "ی").replace("ك", "ک")
    return " ".join(text.lower().split())
