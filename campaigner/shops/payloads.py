"""A shop's JSON payload, read with its shape checked before any value is used.

A valid signature proves who sent a payload, not that it is well formed: a plugin, a proxy
or the shop's own bug can put a string where an object belongs, `NaN` in a price or text in
a quantity. Each reader returns the type it promises or raises RowError naming the field, so
such a delivery is answered `rejected: …` (the shop keeps the webhook) instead of a 500.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from campaigner.customers.records import RowError, as_text

MAX_DIGITS = 20


def obj(value: Any, field: str) -> Mapping[str, Any]:
    """A JSON object; null (or absent) is an empty one."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RowError(f"expected an object, got {type(value).__name__}", field)
    return value


def objects(value: Any, field: str) -> list[Mapping[str, Any]]:
    """A JSON array of objects; null (or absent) is an empty one."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise RowError(f"expected a list, got {type(value).__name__}", field)
    return [obj(item, field) for item in value]


def scalar(value: Any, field: str) -> Any:
    """A string, number, boolean or null: never an object or a list."""
    if isinstance(value, Mapping | list):
        raise RowError(f"expected a value, got {type(value).__name__}", field)
    return value


def money(value: Any, field: str) -> Decimal:
    """An amount as the shops write it (a string or a number): finite, signed as given."""
    text = as_text(scalar(value, field)).strip() or "0"
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise RowError(f"bad amount {text!r}", field) from None
    if not amount.is_finite():
        raise RowError(f"bad amount {text!r}", field)
    return amount


def whole(value: Any, field: str) -> int:
    """A whole number (an id, a quantity): a non-negative integer or its digits; null is 0.
    At most 20 digits, an unsigned BIGINT's (a shop's ids): past 4,300, int() itself fails."""
    if value is None or value == "":
        return 0
    digits = value.strip() if isinstance(value, str) else value
    if isinstance(digits, int) and not isinstance(digits, bool):
        digits = str(digits)
    if isinstance(digits, str) and digits.isascii() and digits.isdigit():
        if len(digits) > MAX_DIGITS:
            raise RowError(f"more than {MAX_DIGITS} digits: {digits[:40]!r}…", field)
        return int(digits)
    raise RowError(f"not a whole number: {as_text(value)[:40]!r}", field)


_DAY = re.compile(r"^(\d{4}-\d{2}-\d{2})(T|$)")
SIGNUP = "date:signup"


def signup_day(value: Any) -> dict[str, str]:
    """The customer's `signup` date from a creation time written in the shop's own time
    (`2017-03-21T16:09:28`, `2021-12-31T19:00:00-05:00`): its day as the shop saw it. A value
    of another shape gives nothing, never a rejected customer."""
    match = _DAY.match(value.strip()) if isinstance(value, str) else None
    return {SIGNUP: match.group(1)} if match else {}
