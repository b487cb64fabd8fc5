"""Shop values fitted to their columns: a shop's fields are unbounded, Campaigner's are not.

A WooCommerce guest's billing name, a city or a product name can be any length. Rejecting
the record would lose the order (and its thank-you) for a cosmetic field, so the loader keeps
it and fits the value instead, with a warning naming the field:

- free text (names, city, an item's name) is cut at a user-perceived character: a Persian
  letter keeps its marks, and no half-space (ZWNJ) or space is left dangling at the end;
- a list of coupon codes keeps the whole codes that fit, in order;
- a referral code, SKU or product id too long for its column cannot be one of ours or match
  anything stored, so it is dropped;
- a product category is cut to its column as a rule's category name is, so the two still match.

What identifies a record (its id, its customer's id) or is checked against a list (locale,
time zone, currency) still rejects its record: cutting those would change what it means.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import regex
from sqlalchemy import String, Table

from campaigner.customers.categories import names, store
from campaigner.db.models import Customer, Order, OrderItem
from campaigner.products.categories import MAX_CATEGORY

_GRAPHEME = regex.compile(r"\X")
_TRAILING = " \u200c\u200d"  # a space, ZWNJ or ZWJ left at the end joins nothing


def _widths(model: type, names: tuple[str, ...]) -> dict[str, int]:
    """Column widths read from the schema, so they cannot drift from it."""
    table = cast(Table, model.__table__)  # type: ignore[attr-defined]
    widths = {}
    for name in names:
        kind = table.c[name].type
        assert isinstance(kind, String) and kind.length is not None, name
        widths[name] = kind.length
    return widths


CUSTOMER_TEXT = _widths(Customer, ("first_name", "last_name", "city"))
ORDER_CODES = _widths(Order, ("coupon_code", "referral_code"))
ITEM_TEXT = _widths(OrderItem, ("name",))
ITEM_IDS = _widths(OrderItem, ("product_id", "sku"))


def fit_text(text: str, width: int) -> str:
    """`text` in at most `width` characters, cut between grapheme clusters. A first cluster
    longer than `width` (a letter under a pile of marks) is cut between its code points."""
    if len(text) <= width:
        return text
    end = 0
    for cluster in _GRAPHEME.finditer(text):
        if cluster.end() > width:
            break
        end = cluster.end()
    return (text[:end] if end else text[:width]).rstrip(_TRAILING)


def fit_codes(text: str | None, width: int) -> str | None:
    """A comma-separated list of codes: the whole codes that fit, in order; None if none."""
    if text is None or len(text) <= width:
        return text
    kept = ""
    for code in text.split(","):
        joined = f"{kept},{code}" if kept else code
        if len(joined) <= width:
            kept = joined
    return kept or None


def fit_customer(row: dict[str, Any]) -> list[tuple[str, str]]:
    """Fit a customer row's free text in place; (field, warning) for each value changed."""
    return _fit_text(row, CUSTOMER_TEXT, "")


def fit_order(row: dict[str, Any], items: list[dict[str, Any]] | None) -> list[tuple[str, str]]:
    """Fit an order row and its items in place; (field, warning) for each value changed."""
    warnings = []
    coupons = row["coupon_code"]
    width = ORDER_CODES["coupon_code"]
    row["coupon_code"] = fit_codes(coupons, width)
    if row["coupon_code"] != coupons:
        kept = len(row["coupon_code"].split(",")) if row["coupon_code"] else 0
        warnings.append(
            (
                "coupon_code",
                f"coupon_code longer than {width} characters: kept {kept} of "
                f"{len(coupons.split(','))} codes",
            )
        )
    warnings += _drop_long(row, {"referral_code": ORDER_CODES["referral_code"]}, "")
    for line_no, item in enumerate(items or [], start=1):
        warnings += fit_item(item, line_no)
    return warnings


def fit_item(item: dict[str, Any], line_no: int) -> list[tuple[str, str]]:
    """Fit one line item in place (an order's, or a line of an items file); ("items",
    warning) for each value changed."""
    where = f"item {line_no}: "
    warnings = [("items", text) for _, text in _fit_text(item, ITEM_TEXT, where)]
    warnings += [("items", text) for _, text in _drop_long(item, ITEM_IDS, where)]
    return warnings + [("items", where + text) for text in _fit_categories(item)]


def _fit_categories(item: dict[str, Any]) -> list[str]:
    """Cut each category longer than its column as a rule's name is cut (`category_key`),
    so a rule naming the whole category still matches; a warning for each."""
    text = item.get("categories") or ""
    if len(text) <= MAX_CATEGORY:  # the common case: no name in it can be too long
        return []
    given = names(text)
    long = [name for name in given if len(name) > MAX_CATEGORY]
    if long:
        item["categories"] = store(given)
    return [f"category of {len(name):,} characters cut to {MAX_CATEGORY}" for name in long]


def _fit_text(row: dict[str, Any], widths: Mapping[str, int], where: str) -> list[tuple[str, str]]:
    warnings = []
    for name, width in widths.items():
        value = row.get(name)
        if isinstance(value, str) and len(value) > width:
            row[name] = fit_text(value, width)
            warnings.append(
                (name, f"{where}{name} of {len(value):,} characters cut to {len(row[name])}")
            )
    return warnings


def _drop_long(row: dict[str, Any], widths: Mapping[str, int], where: str) -> list[tuple[str, str]]:
    warnings = []
    for name, width in widths.items():
        value = row.get(name)
        if isinstance(value, str) and len(value) > width:
            row[name] = None
            warnings.append((name, f"{where}{name} longer than {width} characters: left out"))
    return warnings
