"""How long a product lasts: the median time customers take to buy it again, in SQL.

Every gap between two consecutive paid orders of one customer that both hold the product
(LAG over the customer's purchases) is one observation; the median of all of them, across
customers, rounded to whole days (half a day up, at least 1), is the product's reorder interval.

SQLite has no percentile function, so the median is picked by rank, the same on every
database: number the gaps in order (ROW_NUMBER) next to their count (COUNT OVER), and
average the middle one (odd count) or the middle two (even count). No customer who bought
it twice: NULL, and a rule waiting on it has nothing due.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, Integer, Select, case, cast, func, literal, select
from sqlalchemy.orm import Session

from campaigner.db.models import UTCDateTime
from campaigner.products.bought import ProductChoice, orders, orders_with


def gap_days(earlier: Any, later: Any, dialect: str) -> ColumnElement[Any]:
    """Days (with a fraction) from `earlier` to `later`, two stored datetimes."""
    if dialect == "sqlite":
        return func.julianday(later) - func.julianday(earlier)
    return cast(func.extract("epoch", later - earlier), Float) / 86400.0


def median_reorder_days(choice: ProductChoice, until: Any, dialect: str) -> Select[Any]:
    """One row, one column `days`: the reorder interval of purchases paid up to `until`."""
    purchases = (
        select(
            orders.c.paid_at,
            func.lag(orders.c.paid_at)
            .over(partition_by=orders.c.customer_id, order_by=(orders.c.paid_at, orders.c.id))
            .label("previous"),
        )
        .where(
            orders.c.status == "paid",
            orders.c.paid_at <= until,
            orders.c.id.in_(orders_with(choice)),
        )
        .subquery("purchases")
    )
    gaps = (
        select(gap_days(purchases.c.previous, purchases.c.paid_at, dialect).label("gap"))
        .where(purchases.c.previous.is_not(None))
        .subquery("gaps")
    )
    ranked = select(
        gaps.c.gap,
        func.row_number().over(order_by=gaps.c.gap).label("rank"),
        func.count().over().label("total"),
    ).subquery("ranked")
    middle = func.avg(ranked.c.gap)
    # Half a day rounds up on every database: SQLite's CAST truncates, PostgreSQL's rounds.
    if dialect == "sqlite":
        rounded = cast(middle + 0.5, Integer)
    else:
        rounded = cast(func.floor(middle + 0.5), Integer)
    days = case((middle.is_(None), None), (rounded < 1, 1), else_=rounded)
    return select(days.label("days")).where(
        ranked.c.rank.between((ranked.c.total + 1) // 2, (ranked.c.total + 2) // 2)
    )


def reorder_days(session: Session, choice: ProductChoice, until: datetime) -> int | None:
    """The interval as a number, for `rules check` and preview."""
    dialect = session.get_bind().dialect.name
    value = session.scalar(median_reorder_days(choice, literal(until, UTCDateTime()), dialect))
    return None if value is None else int(value)
