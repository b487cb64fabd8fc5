"""cross_sell: `after` a paid order containing `bought`, unless `suggest` was bought since.

"Since" starts with the triggering order itself (it may already hold the suggestion) and
ends at the planning instant, so a rehearsal never counts orders of its future. The
order's id is the occurrence key: each order is followed up once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select

from campaigner.products.bought import bought, order_contains
from campaigner.rules.models import CrossSellRule
from campaigner.rules.triggers.common import (
    DueContext,
    after_paid_order,
    customers,
    instant,
    orders,
)


def due(rule: CrossSellRule, ctx: DueContext) -> Select[Any]:
    return after_paid_order(
        rule,
        ctx,
        rule.after_td,
        order_contains(rule.bought, orders.c.id),
        ~bought(
            rule.suggest,
            customers.c.id,
            since=orders.c.paid_at,
            until=instant(ctx.end),
            name="suggested",
        ),
    )
