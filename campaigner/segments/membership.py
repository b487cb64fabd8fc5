"""Which customers are in which value segment, as SQL for other queries to use.

A customer without a `customer_scores` row is in "none"; these expressions say so, so that
no caller has to remember it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, FromClause, Table, false, func, or_, select

from campaigner.db.models import CustomerScore
from campaigner.segments.rfm_map import NO_SEGMENT

scores = cast(Table, CustomerScore.__table__)


def segment_of(customer_id: Any) -> ColumnElement[str]:
    """The current segment of the customer with this id (a correlated lookup by key)."""
    found = select(scores.c.segment).where(scores.c.customer_id == customer_id)
    return func.coalesce(found.scalar_subquery(), NO_SEGMENT)


def with_segment(source: FromClause, customer_id: Any) -> tuple[FromClause, ColumnElement[str]]:
    """`source` outer-joined to the scores of its `customer_id`, and the segment column of
    that join: for queries that group many customers by segment."""
    joined = source.outerjoin(scores, scores.c.customer_id == customer_id)
    return joined, func.coalesce(scores.c.segment, NO_SEGMENT)


def in_segments(customer_id: Any, names: Sequence[str]) -> ColumnElement[bool]:
    """Whether the customer is in one of these segments ("none" included), through the
    index on `customer_scores.segment`."""
    named = [name for name in names if name != NO_SEGMENT]
    conditions: list[ColumnElement[bool]] = []
    if named:
        members = select(scores.c.customer_id).where(scores.c.segment.in_(named))
        conditions.append(customer_id.in_(members))
    if NO_SEGMENT in names:
        scored = select(scores.c.customer_id).where(scores.c.segment != NO_SEGMENT)
        conditions.append(customer_id.not_in(scored))
    return or_(*conditions) if conditions else false()
