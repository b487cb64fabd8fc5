"""segment_change: due when the recomputation records a move from `from` to `to`.

The change's time is the due time; the key is its day, so one change is messaged once. A
customer bouncing between two segments is messaged at most once per `cooldown`: a change is
due only when the ledger holds no row of this rule for the customer within the cooldown
before it, and of several changes due in one pass only the latest counts (the planner
inserts a pass's rows together, so they cannot see each other).
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Select, Table, exists, func, select

from campaigner.db.models import Message, SegmentChange
from campaigner.rules.models import SegmentChangeRule
from campaigner.rules.triggers.common import (
    DueContext,
    customers,
    due_columns,
    eligible,
    key_text,
    no_order,
    shift,
)

changes = cast(Table, SegmentChange.__table__)
messages = cast(Table, Message.__table__)


def due(rule: SegmentChangeRule, ctx: DueContext) -> Select[Any]:
    moves = [
        changes.c.new.in_(rule.to),
        changes.c.changed_at >= ctx.start,
        changes.c.changed_at <= ctx.end,
    ]
    if rule.from_:
        moves.append(changes.c.old.in_(rule.from_))
    latest = (
        select(
            changes.c.customer_id,
            changes.c.changed_at,
            func.row_number()
            .over(
                partition_by=changes.c.customer_id,
                order_by=(changes.c.changed_at.desc(), changes.c.id.desc()),
            )
            .label("latest"),
        )
        .where(*moves)
        .subquery("moves")
    )
    recently_messaged = exists().where(
        messages.c.rule == rule.name,
        messages.c.customer_id == latest.c.customer_id,
        messages.c.due_at > shift(latest.c.changed_at, -rule.cooldown_td, ctx.dialect),
    )
    return (
        select(
            *due_columns(
                customers.c.id,
                key_text(func.date(latest.c.changed_at)),
                latest.c.changed_at,
                shift(latest.c.changed_at, rule.lateness, ctx.dialect),
                no_order(),
            )
        )
        .select_from(latest.join(customers, customers.c.id == latest.c.customer_id))
        .where(latest.c.latest == 1, ~recently_messaged, *eligible(rule, ctx.end))
    )
