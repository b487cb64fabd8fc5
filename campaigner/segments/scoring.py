"""RFM scores and segments, computed by the database.

Two steps, so that recomputing after a batch and recomputing everything agree exactly:

1. `refresh_inputs` recomputes, from paid orders, each given customer's monetary input: the
   currency their value is counted in and their spend in it (net of refunds). Frequency and
   recency come from the order statistics already kept on customers (`orders_count`,
   `last_order_at`). Only these inputs depend on the customers touched.
2. `rescore` ranks every customer with a paid order in ONE statement (window functions) and
   writes only the customers whose scores or segment moved, with a `segment_changes` row for
   each segment that did. It reads customers only, never orders. Quintile boundaries are
   shop-wide (one new customer shifts them for everybody), so the ranking is never partial:
   what is incremental is reading orders, and writing.

Scores are quintiles: NTILE(5) over the customers ordered by the input (oldest last purchase
day first, fewest orders first, least spend first), then every customer tied on the input
takes the lowest tile among them, so equal customers always get equal scores whatever their
ids. Monetary is ranked within each currency, never across currencies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from campaigner.db.models import Customer, Order, SegmentChange, UTCDateTime
from campaigner.segments.rfm_map import NO_SEGMENT, SegmentMap

customers = cast(Table, Customer.__table__)
orders = cast(Table, Order.__table__)
changes = cast(Table, SegmentChange.__table__)

# Customers whose inputs are refreshed per statement (each id is a bound parameter).
INPUTS_CHUNK = 1000
# Any constant: PostgreSQL serialises rescoring passes of several processes on it.
RESCORE_LOCK = 0x5E6

SCORES = ("recency_score", "frequency_score", "monetary_score", "segment")

_rescored = Table(
    "segment_rescored",
    MetaData(),
    Column("customer_id", Integer, primary_key=True),
    Column("recency_score", Integer),
    Column("frequency_score", Integer),
    Column("monetary_score", Integer),
    Column("segment", String(24)),
    Column("old_segment", String(24)),
    prefixes=["TEMPORARY"],
)


@dataclass(frozen=True)
class RescoreResult:
    scored: int  # customers written because a score or the segment moved
    changed: int  # of those, customers whose segment moved (one history row each)


def refresh_inputs(session: Session, customer_ids: list[int] | None, main_currency: str) -> None:
    """Recompute the monetary input of these customers (None: of every customer).

    A customer whose paid orders are all in one currency is valued in it; a customer who paid
    in several is valued in the shop's main currency, counting only the orders paid in it:
    amounts in different currencies are never added up.
    """
    if customer_ids is None:
        session.execute(_inputs_update(None, main_currency))
        return
    ids = sorted(set(customer_ids))
    for start in range(0, len(ids), INPUTS_CHUNK):
        session.execute(_inputs_update(ids[start : start + INPUTS_CHUNK], main_currency))


def _inputs_update(chunk: list[int] | None, main_currency: str) -> Any:
    o = orders.alias("o")
    currency = func.coalesce(func.nullif(o.c.currency, ""), main_currency)
    net = o.c.total - o.c.refunded
    paid = [o.c.status == "paid", o.c.paid_at.is_not(None)]
    if chunk is not None:
        paid.append(o.c.customer_id.in_(chunk))
    spend = (
        select(
            o.c.customer_id,
            func.count(func.distinct(currency)).label("currencies"),
            func.min(currency).label("only_currency"),
            func.sum(net).label("spent"),
            func.sum(case((currency == main_currency, net), else_=0)).label("main_spent"),
        )
        .where(*paid)
        .group_by(o.c.customer_id)
        .subquery("spend")
    )
    single = spend.c.currencies == 1
    c = customers.alias("c")
    inputs = (
        select(
            c.c.id,
            case((single, spend.c.only_currency), (spend.c.currencies > 1, main_currency)).label(
                "segment_currency"
            ),
            case((single, spend.c.spent), (spend.c.currencies > 1, spend.c.main_spent)).label(
                "segment_spent"
            ),
        )
        .select_from(c.outerjoin(spend, spend.c.customer_id == c.c.id))
        .where(*([] if chunk is None else [c.c.id.in_(chunk)]))
        .subquery("inputs")
    )
    return (
        update(customers)
        .where(
            customers.c.id == inputs.c.id,
            or_(
                customers.c.segment_currency.is_distinct_from(inputs.c.segment_currency),
                customers.c.segment_spent.is_distinct_from(inputs.c.segment_spent),
            ),
        )
        .values(segment_currency=inputs.c.segment_currency, segment_spent=inputs.c.segment_spent)
    )


def scores_query(segment_map: SegmentMap) -> Select[Any]:
    """Every customer's new scores and segment (NULL scores and "none" without a paid order),
    with the segment they have now; ranking is by window functions, in the database."""
    c = customers
    day = func.date(c.c.last_order_at)
    spent = func.coalesce(c.c.segment_spent, 0)
    tiles = (
        select(
            c.c.id,
            day.label("day"),
            c.c.orders_count,
            c.c.segment_currency,
            spent.label("spent"),
            func.ntile(5).over(order_by=(day, c.c.id)).label("r_tile"),
            func.ntile(5).over(order_by=(c.c.orders_count, c.c.id)).label("f_tile"),
            func.ntile(5)
            .over(partition_by=c.c.segment_currency, order_by=(spent, c.c.id))
            .label("m_tile"),
        )
        .where(c.c.orders_count > 0, c.c.last_order_at.is_not(None))
        .subquery("tiles")
    )
    t = tiles.c
    tied = (
        select(
            t.id,
            func.min(t.r_tile).over(partition_by=t.day).label("r"),
            func.min(t.f_tile).over(partition_by=t.orders_count).label("f"),
            func.min(t.m_tile).over(partition_by=(t.segment_currency, t.spent)).label("m"),
        )
    ).subquery("tied")
    cell = tied.c.r * 10 + tied.c.f
    segment = case(
        *(
            (cell.in_(segment_map.cells_of(name)), literal(name))
            for name in sorted(set(segment_map.cells.values()))
        ),
        else_=literal(NO_SEGMENT),
    )
    return select(
        c.c.id.label("customer_id"),
        tied.c.r.label("recency_score"),
        tied.c.f.label("frequency_score"),
        tied.c.m.label("monetary_score"),
        func.coalesce(case((tied.c.id.is_not(None), segment)), NO_SEGMENT).label("segment"),
        c.c.segment.label("old_segment"),
    ).select_from(c.outerjoin(tied, tied.c.id == c.c.id))


def rescore(session: Session, segment_map: SegmentMap, now: datetime) -> RescoreResult:
    """Rank the whole shop and write what moved; see the module docstring."""
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RESCORE_LOCK})
    session.execute(text("DROP TABLE IF EXISTS segment_rescored"))
    _rescored.create(connection)
    new = scores_query(segment_map).subquery("new")
    moved = or_(
        *(
            new.c[name].is_distinct_from(customers.c[name])
            for name in ("recency_score", "frequency_score", "monetary_score")
        ),
        new.c.segment != new.c.old_segment,
    )
    session.execute(
        insert(_rescored).from_select(
            ["customer_id", *SCORES, "old_segment"],
            select(new.c.customer_id, *(new.c[name] for name in SCORES), new.c.old_segment)
            .select_from(new.join(customers, customers.c.id == new.c.customer_id))
            .where(moved),
        )
    )
    r = _rescored.c
    session.execute(
        insert(changes).from_select(
            ["customer_id", "old", "new", "changed_at"],
            select(r.customer_id, r.old_segment, r.segment, literal(now, UTCDateTime())).where(
                r.segment != r.old_segment
            ),
        )
    )
    changed = session.scalar(
        select(func.count()).select_from(_rescored).where(r.segment != r.old_segment)
    )
    scored = _count(
        session.execute(
            update(customers)
            .where(customers.c.id == r.customer_id)
            .values({name: r[name] for name in SCORES})
        )
    )
    session.execute(text("DROP TABLE segment_rescored"))
    return RescoreResult(scored=scored, changed=changed or 0)


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def recompute(
    session: Session,
    segment_map: SegmentMap,
    now: datetime,
    main_currency: str,
    customer_ids: list[int] | None = None,
) -> RescoreResult:
    """Inputs of the customers touched (None: everybody), then the shop-wide ranking."""
    refresh_inputs(session, customer_ids, main_currency)
    return rescore(session, segment_map, now)
