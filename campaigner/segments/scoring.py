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
    Date,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import cast as sa_cast
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
        for statement in _inputs_updates(None, main_currency):
            session.execute(statement)
        return
    ids = sorted(set(customer_ids))
    for start in range(0, len(ids), INPUTS_CHUNK):
        for statement in _inputs_updates(ids[start : start + INPUTS_CHUNK], main_currency):
            session.execute(statement)


def _inputs_updates(chunk: list[int] | None, main_currency: str) -> list[Any]:
    """Two UPDATEs: the payers' inputs from their paid orders, and NULL for customers with
    inputs but no paid order any more."""
    o = orders.alias("o")
    currency = func.coalesce(func.nullif(o.c.currency, ""), main_currency)
    net = o.c.total - o.c.refunded
    paid = [o.c.status == "paid", o.c.paid_at.is_not(None)]
    scope = [] if chunk is None else [customers.c.id.in_(chunk)]
    grouped = (
        select(
            o.c.customer_id,
            func.count(func.distinct(currency)).label("currencies"),
            func.min(currency).label("only_currency"),
            func.sum(net).label("spent"),
            func.sum(case((currency == main_currency, net), else_=0)).label("main_spent"),
        )
        .where(*paid, *([] if chunk is None else [o.c.customer_id.in_(chunk)]))
        .group_by(o.c.customer_id)
        .subquery("grouped")
    )
    single = grouped.c.currencies == 1
    spend = select(
        grouped.c.customer_id,
        case((single, grouped.c.only_currency), else_=literal(main_currency)).label("currency"),
        case((single, grouped.c.spent), else_=grouped.c.main_spent).label("spent"),
    ).subquery("spend")
    payers = (
        update(customers)
        .where(
            customers.c.id == spend.c.customer_id,
            or_(
                customers.c.segment_currency.is_distinct_from(spend.c.currency),
                customers.c.segment_spent.is_distinct_from(spend.c.spent),
            ),
        )
        .values(segment_currency=spend.c.currency, segment_spent=spend.c.spent)
    )
    o2 = orders.alias("o2")
    any_paid = exists().where(
        o2.c.customer_id == customers.c.id, o2.c.status == "paid", o2.c.paid_at.is_not(None)
    )
    others = (
        update(customers)
        .where(
            *scope,
            or_(customers.c.segment_currency.is_not(None), customers.c.segment_spent.is_not(None)),
            ~any_paid,
        )
        .values(segment_currency=None, segment_spent=None)
    )
    return [payers, others]


def _quintile(position: Any, count: Any) -> Any:
    """The NTILE(5) tile of 1-based `position` among `count` rows: the first count % 5 tiles
    hold one row more than the others, as NTILE deals them."""
    size = count // 5
    extra = count % 5
    big = extra * (size + 1)
    return case(
        (position <= big, (position - 1) // (size + 1) + 1),
        else_=extra + (position - 1 - big) // func.nullif(size, 0) + 1,
    )


def scores_query(segment_map: SegmentMap, dialect: str) -> Select[Any]:
    """The new scores and segment of every customer with a paid order, next to the ones
    stored now, in one SELECT. A tie group's RANK() is the position of its first member, so
    `_quintile(RANK(), COUNT(*))` is the lowest NTILE(5) tile of the group: each score costs
    one sort, and no database has to look up a window's rows by id."""
    c = customers
    day = (
        func.substr(c.c.last_order_at, 1, 10)  # SQLite keeps 'YYYY-MM-DD HH:MM:SS…' text
        if dialect == "sqlite"
        else sa_cast(c.c.last_order_at, Date)
    )
    spent = func.coalesce(c.c.segment_spent, 0)
    ranked = (
        select(
            c.c.id,
            *(c.c[name].label(f"old_{name}") for name in SCORES),
            func.rank().over(order_by=day).label("r_rank"),
            func.rank().over(order_by=c.c.orders_count).label("f_rank"),
            func.rank().over(partition_by=c.c.segment_currency, order_by=spent).label("m_rank"),
            func.count().over().label("payers"),
            func.count().over(partition_by=c.c.segment_currency).label("currency_payers"),
        )
        .where(_paying(c))
        .subquery("ranked")
    )
    k = ranked.c
    scored = select(
        k.id,
        *(k[f"old_{name}"] for name in SCORES),
        _quintile(k.r_rank, k.payers).label("r"),
        _quintile(k.f_rank, k.payers).label("f"),
        _quintile(k.m_rank, k.currency_payers).label("m"),
    ).subquery("scored")
    cell = scored.c.r * 10 + scored.c.f
    segment = case(
        *(
            (cell.in_(segment_map.cells_of(name)), literal(name))
            for name in sorted(set(segment_map.cells.values()))
        ),
        else_=literal(NO_SEGMENT),
    )
    return select(
        scored.c.id.label("customer_id"),
        scored.c.r.label("recency_score"),
        scored.c.f.label("frequency_score"),
        scored.c.m.label("monetary_score"),
        segment.label("segment"),
        *(scored.c[f"old_{name}"] for name in SCORES),
    )


def _paying(c: Any) -> Any:
    return and_(c.c.orders_count > 0, c.c.last_order_at.is_not(None))


def rescore(session: Session, segment_map: SegmentMap, now: datetime) -> RescoreResult:
    """Rank the whole shop and write what moved; see the module docstring."""
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RESCORE_LOCK})
    session.execute(text("DROP TABLE IF EXISTS segment_rescored"))
    _rescored.create(connection)
    columns = ["customer_id", *SCORES, "old_segment"]
    new = scores_query(segment_map, dialect).subquery("new")
    moved = or_(*(new.c[name].is_distinct_from(new.c[f"old_{name}"]) for name in SCORES))
    session.execute(
        insert(_rescored).from_select(
            columns,
            select(new.c.customer_id, *(new.c[name] for name in SCORES), new.c.old_segment).where(
                moved
            ),
        )
    )
    # Customers without a paid order any more (a refund, a merge) go back to "none".
    c = customers
    session.execute(
        insert(_rescored).from_select(
            columns,
            select(c.c.id, null(), null(), null(), literal(NO_SEGMENT), c.c.segment).where(
                ~_paying(c),
                or_(
                    c.c.segment != NO_SEGMENT,
                    *(c.c[name].is_not(None) for name in SCORES if name != "segment"),
                ),
            ),
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
