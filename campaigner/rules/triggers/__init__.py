"""One compiler per trigger: a rule and a due window in, one SELECT of due occurrences out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from campaigner.rules.triggers import (
    birthday,
    nps_survey,
    post_purchase,
    referral_request,
    win_back,
)
from campaigner.rules.triggers.common import DUE_COLUMNS, DueContext

COMPILERS: dict[str, Callable[[Any, DueContext], Any]] = {
    "post_purchase": post_purchase.due,
    "nps_survey": nps_survey.due,
    "birthday": birthday.due,
    "win_back": win_back.due,
    "referral_request": referral_request.due,
}


def compile_due(rule: Any, ctx: DueContext) -> Any:
    """The SELECT of `rule`'s occurrences due in the context's window (columns: DUE_COLUMNS)."""
    return COMPILERS[rule.trigger](rule, ctx)


__all__ = ["COMPILERS", "DUE_COLUMNS", "DueContext", "compile_due"]
