"""nps_survey: asks for a 0-10 score `delay` after each paid order; the key is the order id.

Which orders qualify works exactly as for post_purchase.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select

from campaigner.rules.models import NpsSurveyRule
from campaigner.rules.triggers import post_purchase
from campaigner.rules.triggers.common import DueContext


def due(rule: NpsSurveyRule, ctx: DueContext) -> Select[Any]:
    return post_purchase.due(rule, ctx)
