"""win_back: `inactive_days` after the last paid order, at `send_at` in the customer's zone.

The message is due at the first local `send_at` on or after last_order_at + inactive_days.
For each zone and each local day whose send time falls in the window, that is a range of
`last_order_at` (indexed): after the previous day's send time, up to this day's. The key is
the last order's id, so a new purchase starts a new episode.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Select, Subquery, select

from campaigner.rules.models import WinBackRule
from campaigner.rules.triggers.common import (
    DueContext,
    customers,
    due_columns,
    eligible,
    grouped,
    instant,
    key_text,
    local_sends,
    send_instant,
)


def due(rule: WinBackRule, ctx: DueContext) -> list[Select[Any]]:
    inactive = timedelta(days=rule.inactive_days)
    branches = []
    for name, zone in sorted(ctx.zones.items()):
        for day, send in local_sends(zone, ctx.start, ctx.end, rule.send_time):
            previous = send_instant(day - timedelta(days=1), rule.send_time, zone)
            branches.append(
                select(
                    customers.c.id.label("id"),
                    instant(send).label("due_at"),
                    instant(send + rule.lateness).label("expires_at"),
                ).where(
                    customers.c.timezone == name,
                    customers.c.last_order_at > previous - inactive,
                    customers.c.last_order_at <= send - inactive,
                )
            )

    def eligible_due(found: Subquery) -> Select[Any]:
        return (
            select(
                *due_columns(
                    customers.c.id,
                    key_text(customers.c.last_order_id),
                    found.c.due_at,
                    found.c.expires_at,
                    customers.c.last_order_id,
                )
            )
            .select_from(found.join(customers, customers.c.id == found.c.id))
            .where(
                customers.c.last_order_id.is_not(None),
                customers.c.orders_count >= rule.min_orders,
                *eligible(rule, ctx.end),
            )
        )

    return grouped(branches, eligible_due)
