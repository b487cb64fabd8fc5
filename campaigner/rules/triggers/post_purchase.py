"""post_purchase (and nps_survey): due `delay` after each paid order; the key is the order id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from campaigner.rules.models import PostPurchaseRule
from campaigner.rules.triggers.common import (
    DueContext,
    customers,
    due_columns,
    eligible,
    key_text,
    orders,
    shift,
)


def due(rule: PostPurchaseRule, ctx: DueContext) -> Select[Any]:
    delay = rule.delay_td
    paid_at = orders.c.paid_at
    query = (
        select(
            *due_columns(
                customers.c.id,
                key_text(orders.c.id),
                shift(paid_at, delay, ctx.dialect),
                shift(paid_at, delay + rule.lateness, ctx.dialect),
                orders.c.id,
            )
        )
        .select_from(orders.join(customers, customers.c.id == orders.c.customer_id))
        .where(
            orders.c.status == "paid",
            paid_at >= ctx.start - delay,
            paid_at <= ctx.end - delay,
            *eligible(rule),
        )
    )
    if rule.min_order_total is not None:
        query = query.where(orders.c.total >= rule.min_order_total)
    if rule.first_order_only:
        query = query.where(orders.c.sequence == 1)
    return query
