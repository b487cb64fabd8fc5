"""win_back: `inactive_days` after the last paid order, at `send_at` in the customer's zone.

The message is due at the first local `send_at` on or after last_order_at + inactive_days.
For each zone and each local day whose send time falls in the window, that is a range of
`last_order_at` (indexed): after the previous day's send time, up to this day's. The key is
the last order's id, so a new purchase starts a new episode.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Select, select

from campaigner.rules.models import WinBackRule
from campaigner.rules.triggers.common import (
    DueContext,
    customers,
    due_columns,
    eligible,
    instant,
    key_text,
    local_sends,
    send_instant,
    union_or_nothing,
)


def due(rule: WinBackRule, ctx: DueContext) -> Select[Any] | Any:
    inactive = timedelta(days=rule.inactive_days)
    branches = []
    for name, zone in sorted(ctx.zones.items()):
        for day, send in local_sends(zone, ctx.start, ctx.end, rule.send_time):
            previous = send_instant(day - timedelta(days=1), rule.send_time, zone)
            branches.append(
                select(
                    *due_columns(
                        customers.c.id,
                        key_text(customers.c.last_order_id),
                        instant(send),
                        instant(send + rule.lateness),
                        customers.c.last_order_id,
                    )
                ).where(
                    customers.c.timezone == name,
                    customers.c.last_order_at > previous - inactive,
                    customers.c.last_order_at <= send - inactive,
                    customers.c.last_order_id.is_not(None),
                    customers.c.orders_count >= rule.min_orders,
                    *eligible(rule),
                )
            )
    return union_or_nothing(branches)
