"""Whether a customer bought something: products (by the shop's id or SKU) or categories.

Every test is an EXISTS subquery with bound values only (a product id, a SKU, a folded
category name), so rule content never becomes SQL text; indexes on `order_items.product_id`,
`order_items.sku` and `order_item_categories.category` keep each one a lookup.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    Table,
    and_,
    exists,
    or_,
    select,
    union,
)

from campaigner.db.models import Order, OrderItem, OrderItemCategory

orders = cast(Table, Order.__table__)
order_items = cast(Table, OrderItem.__table__)
item_categories = cast(Table, OrderItemCategory.__table__)


def paid_and_kept() -> ColumnElement[bool]:
    """A paid order whose money was not all given back. A refund webhook can refund an order
    in full before the shop's status follows (Shopify's refunds/create comes before its
    orders/updated), so "paid" alone would still thank, survey or cross-sell for it."""
    return and_(
        orders.c.status == "paid", or_(orders.c.refunded < orders.c.total, orders.c.total <= 0)
    )


class ProductChoice(Protocol):
    """What a rule names: product ids or SKUs, and folded category names."""

    @property
    def products(self) -> list[str]: ...

    @property
    def categories(self) -> list[str]: ...


def item_matches(choice: ProductChoice, items: Any) -> ColumnElement[bool]:
    """A line item (of `items`, the table or an alias) is one of the products or in one of
    the categories."""
    tests: list[ColumnElement[bool]] = []
    if choice.products:
        tests += [items.c.product_id.in_(choice.products), items.c.sku.in_(choice.products)]
    if choice.categories:
        categories = item_categories.alias(f"{items.name}_categories")
        tests.append(
            exists().where(
                categories.c.item_id == items.c.id,
                categories.c.category.in_(choice.categories),
            )
        )
    return or_(*tests)


def orders_with(choice: ProductChoice) -> CompoundSelect | Select[Any]:
    """The ids of orders with a matching line: one indexed lookup per kind of name (product
    id, SKU, category), for scanning a product's whole history from its lines rather than
    testing every order."""
    parts: list[Select[Any]] = []
    if choice.products:
        parts.append(
            select(order_items.c.order_id).where(order_items.c.product_id.in_(choice.products))
        )
        parts.append(select(order_items.c.order_id).where(order_items.c.sku.in_(choice.products)))
    if choice.categories:
        parts.append(
            select(order_items.c.order_id)
            .join(item_categories, item_categories.c.item_id == order_items.c.id)
            .where(item_categories.c.category.in_(choice.categories))
        )
    return parts[0] if len(parts) == 1 else union(*parts)


def order_contains(choice: ProductChoice, order_id: Any) -> ColumnElement[bool]:
    """The order `order_id` has a line item matching `choice`."""
    items = order_items.alias("contained_items")
    return exists().where(items.c.order_id == order_id, item_matches(choice, items))


def bought(
    choice: ProductChoice,
    customer_id: Any,
    *,
    since: Any = None,
    until: Any = None,
    later_than: tuple[Any, Any] | None = None,
    name: str = "bought",
) -> ColumnElement[bool]:
    """The customer has a paid order with a matching item, paid in [since, until] (either
    bound may be None, a datetime or a column) and, given `later_than` (an order's paid_at
    and id), after that order. `name` tells apart subqueries in one query."""
    paid = orders.alias(f"{name}_orders")
    items = order_items.alias(f"{name}_items")
    conditions: list[ColumnElement[bool]] = [
        paid.c.customer_id == customer_id,
        paid.c.status == "paid",
        items.c.order_id == paid.c.id,
        item_matches(choice, items),
    ]
    if since is not None:
        conditions.append(paid.c.paid_at >= since)
    if until is not None:
        conditions.append(paid.c.paid_at <= until)
    if later_than is not None:
        paid_at, order_id = later_than
        conditions.append(
            or_(paid.c.paid_at > paid_at, and_(paid.c.paid_at == paid_at, paid.c.id > order_id))
        )
    return exists().where(*conditions)
