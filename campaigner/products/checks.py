"""What `rules check` says about a rule's products before the daemon quietly sends nothing:
a product or category no order line has ever held (a typo, or items not imported yet), and
a `days = "auto"` with no reorder to learn from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from campaigner.products.bought import item_categories, order_items
from campaigner.products.reorder import reorder_days


def product_notes(session: Session, rule: Any, now: datetime) -> list[str]:
    """One line per thing the rule names that the shop's data does not know."""
    notes = []
    for field, choice in _choices(rule):
        unknown = [
            product
            for product in choice.products
            if not session.scalar(
                select(
                    exists().where(
                        or_(order_items.c.product_id == product, order_items.c.sku == product)
                    )
                )
            )
        ]
        unknown += [
            f"category '{category}'"  # not repr: a Persian name keeps its ZWNJ
            for category in choice.categories
            if not session.scalar(select(exists().where(item_categories.c.category == category)))
        ]
        if unknown:
            notes.append(
                f"{field}: no order line has {', '.join(map(str, unknown))} yet "
                "(a typo, or order items not imported: see `orders import --items`)"
            )
    if getattr(rule, "trigger", None) == "replenish" and rule.days == "auto":
        days = reorder_days(session, rule.bought, now)
        if days is None:
            notes.append(
                'days = "auto": no customer has bought it twice yet, so nothing is due; '
                "give a number of days until then"
            )
        else:
            notes.append(f'days = "auto" is {days} days today (the median reorder interval)')
    return notes


def _choices(rule: Any) -> list[tuple[str, Any]]:
    found = [
        (field, getattr(rule, field))
        for field in ("bought", "suggest")
        if getattr(rule, field, None) is not None
    ]
    for field in ("bought_any", "bought_none"):
        value = getattr(rule.audience, field)
        if value is not None:
            found.append((f"audience.{field}", value))
    return found
