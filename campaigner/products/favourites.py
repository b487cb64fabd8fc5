"""A customer's favourite category: the one they bought most of.

"Most" is by quantity (units across their paid orders), then by spend (line totals), then
by name, so the answer is stable. Quantity rather than spend: a customer who buys tea every
month and one teapot a year is a tea customer. Computed for a whole batch of customers in
one statement (GROUP BY, then ROW_NUMBER to keep each one's first), never per message.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigner.products.bought import item_categories, order_items, orders

BATCH = 500


def favourite_categories(session: Session, customer_ids: Collection[int]) -> dict[int, str]:
    """Customer id -> favourite category, for those of `customer_ids` who have one."""
    found: dict[int, str] = {}
    ids = sorted(customer_ids)
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        totals = (
            select(
                orders.c.customer_id,
                item_categories.c.category,
                func.sum(order_items.c.quantity).label("units"),
                func.sum(order_items.c.line_total).label("spend"),
            )
            .select_from(orders)
            .join(order_items, order_items.c.order_id == orders.c.id)
            .join(item_categories, item_categories.c.item_id == order_items.c.id)
            .where(orders.c.customer_id.in_(chunk), orders.c.status == "paid")
            .group_by(orders.c.customer_id, item_categories.c.category)
            .subquery("totals")
        )
        ranked = select(
            totals.c.customer_id,
            totals.c.category,
            func.row_number()
            .over(
                partition_by=totals.c.customer_id,
                order_by=(totals.c.units.desc(), totals.c.spend.desc(), totals.c.category),
            )
            .label("place"),
        ).subquery("ranked")
        rows = session.execute(
            select(ranked.c.customer_id, ranked.c.category).where(ranked.c.place == 1)
        )
        found.update({customer_id: category for customer_id, category in rows})
    return found
