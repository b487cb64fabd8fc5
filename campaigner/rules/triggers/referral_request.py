"""referral_request: due `delay` after the customer's `after_orders`-th paid order.

`orders.sequence` numbers each customer's paid orders, so the qualifying order is an indexed
lookup on (sequence, paid_at); its id is the occurrence key, so it is asked once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select

from campaigner.rules.models import ReferralRequestRule
from campaigner.rules.triggers.common import DueContext, after_paid_order, customers, orders


def due(rule: ReferralRequestRule, ctx: DueContext) -> Select[Any]:
    query = after_paid_order(rule, ctx, rule.delay_td, orders.c.sequence == rule.after_orders)
    if rule.min_total_spent is not None:
        query = query.where(customers.c.total_spent >= rule.min_total_spent)
    return query
