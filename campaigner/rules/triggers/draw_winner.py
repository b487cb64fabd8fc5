"""draw_winner: the winners of a prize draw, as soon as it is drawn.

Due at the draw's `drawn_at`; the occurrence key is the draw's name, so each winner of a
draw is told once. Consent and opt-out still apply, at planning and at send time.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Select, Table, select

from campaigner.db.models import Draw, DrawWinner
from campaigner.rules.models import DrawWinnerRule
from campaigner.rules.triggers.common import (
    DueContext,
    customers,
    due_columns,
    eligible,
    no_order,
    shift,
)

draws = cast(Table, Draw.__table__)
winners = cast(Table, DrawWinner.__table__)


def due(rule: DrawWinnerRule, ctx: DueContext) -> Select[Any]:
    return (
        select(
            *due_columns(
                customers.c.id,
                draws.c.name,
                draws.c.drawn_at,
                shift(draws.c.drawn_at, rule.lateness, ctx.dialect),
                no_order(),
            )
        )
        .select_from(
            draws.join(winners, winners.c.draw_id == draws.c.id).join(
                customers, customers.c.id == winners.c.customer_id
            )
        )
        .where(
            draws.c.name == rule.draw,
            draws.c.drawn_at >= ctx.start,
            draws.c.drawn_at <= ctx.end,
            *eligible(rule, ctx.end),
        )
    )
