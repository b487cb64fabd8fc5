"""post_purchase (and nps_survey): due `delay` after each paid order; the key is the order id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select

from campaigner.rules.models import PostPurchaseRule
from campaigner.rules.triggers.common import DueContext, after_paid_order, orders


def due(rule: PostPurchaseRule, ctx: DueContext) -> Select[Any]:
    query = after_paid_order(rule, ctx, rule.delay_td)
    if rule.min_order_total is not None:
        query = query.where(orders.c.total >= rule.min_order_total)
    if rule.first_order_only:
        query = query.where(orders.c.sequence == 1)
    return query
