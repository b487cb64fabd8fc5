"""One compiler per trigger: a rule and a due window in, the SELECTs of due occurrences out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Select

from campaigner.rules.triggers import (
    announcement,
    birthday,
    cross_sell,
    draw_winner,
    nps_survey,
    occasion,
    personal_date,
    post_purchase,
    referral_request,
    replenish,
    segment_change,
    win_back,
)
from campaigner.rules.triggers.common import DUE_COLUMNS, DueContext

COMPILERS: dict[str, Callable[[Any, DueContext], Select[Any] | list[Select[Any]]]] = {
    "post_purchase": post_purchase.due,
    "nps_survey": nps_survey.due,
    "birthday": birthday.due,
    "win_back": win_back.due,
    "referral_request": referral_request.due,
    "segment_change": segment_change.due,
    "occasion": occasion.due,
    "personal_date": personal_date.due,
    "cross_sell": cross_sell.due,
    "replenish": replenish.due,
    "announcement": announcement.due,
    "draw_winner": draw_winner.due,
}


def compile_due(rule: Any, ctx: DueContext) -> list[Select[Any]]:
    """The SELECTs of `rule`'s occurrences due in the context's window (columns: DUE_COLUMNS).

    Order-based triggers need one; birthday and win_back one per hundred zone-days, so no
    statement outgrows the database's limits. No occurrence is in two of them.
    """
    compiled = COMPILERS[rule.trigger](rule, ctx)
    return compiled if isinstance(compiled, list) else [compiled]


__all__ = ["COMPILERS", "DUE_COLUMNS", "DueContext", "compile_due"]
