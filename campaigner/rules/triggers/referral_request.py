"""referral_request: due `delay` after the customer's `after_orders`-th paid order.

`orders.sequence` numbers each customer's paid orders, so the qualifying order is an indexed
lookup on (sequence, paid_at); its id is the occurrence key, so it is asked once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from campaigner.rules.models import ReferralRequestRule
from campaigner.rules.triggers.common import (
    DueContext,
    customers,
    due_columns,
    eligible,
    key_text,
    orders,
    shift,
)


def due(rule: ReferralRequestRule, ctx: DueContext) -> Select[Any]:
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
            orders.c.sequence == rule.after_orders,
            orders.c.status == "paid",
            paid_at >= ctx.start - delay,
            paid_at <= ctx.end - delay,
            *eligible(rule),
        )
    )
    if rule.min_total_spent is not None:
        query = query.where(customers.c.total_spent >= rule.min_total_spent)
    return query
