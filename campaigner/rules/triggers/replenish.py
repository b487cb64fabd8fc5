"""replenish: `days` after the last purchase of a consumable, unless it was bought again.

The last purchase is a paid order holding any of `bought` with no later such order up to
the planning instant; its id is the occurrence key, so a purchase is followed up once and
buying again starts over. `days = "auto"` takes the product's median reorder interval
(`products.reorder`), computed in the same statement: a one-row derived table joined in,
so the paid_at range stays an index range on every database.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal, select, type_coerce
from sqlalchemy.types import Interval

from campaigner.db.models import UTCDateTime
from campaigner.products.bought import bought, order_contains
from campaigner.products.reorder import median_reorder_days
from campaigner.rules.models import ReplenishRule
from campaigner.rules.triggers.common import (
    DueContext,
    after_paid_order,
    customers,
    due_columns,
    eligible,
    instant,
    key_text,
    orders,
    shift,
)


def due(rule: ReplenishRule, ctx: DueContext) -> Select[Any]:
    conditions = (
        order_contains(rule.bought, orders.c.id),
        ~bought(
            rule.bought,
            customers.c.id,
            until=instant(ctx.end),
            later_than=(orders.c.paid_at, orders.c.id),
            name="again",
        ),
    )
    if rule.days != "auto":
        return after_paid_order(rule, ctx, timedelta(days=rule.days), *conditions)
    interval = median_reorder_days(rule.bought, instant(ctx.end), ctx.dialect).subquery("interval")
    days = interval.c.days
    paid_at = orders.c.paid_at
    due_at = shift_days(paid_at, days, ctx.dialect)
    return (
        select(
            *due_columns(
                customers.c.id,
                key_text(orders.c.id),
                due_at,
                shift(due_at, rule.lateness, ctx.dialect),
                orders.c.id,
            )
        )
        .select_from(interval)
        .join(orders, days.is_not(None))
        .join(customers, customers.c.id == orders.c.customer_id)
        .where(
            *conditions,
            orders.c.status == "paid",
            paid_at >= shift_days(instant(ctx.start), -days, ctx.dialect),
            paid_at <= shift_days(instant(ctx.end), -days, ctx.dialect),
            *eligible(rule, ctx.end),
        )
    )


def shift_days(column: Any, days: Any, dialect: str) -> ColumnElement[Any]:
    """`column + days` whole days, `days` a SQL integer; formatted as `common.shift` is."""
    if dialect == "sqlite":
        shifted = func.strftime("%Y-%m-%d %H:%M:%S", column, func.printf("%+d days", days)).concat(
            func.substr(column, 20)
        )
        return type_coerce(shifted, UTCDateTime())
    return type_coerce(column + days * literal(timedelta(days=1), Interval()), UTCDateTime())
