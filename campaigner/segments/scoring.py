"""RFM scores and segments, computed by the database, kept in `customer_scores`.

Two steps, so that recomputing after a batch and recomputing everything agree exactly:

1. `refresh_inputs` recomputes, from paid orders, each given customer's inputs: the number
   of paid orders, the last payment time, and the currency their value is counted in with
   their spend in it (net of refunds). Only these inputs depend on the customers touched.
2. `rescore` ranks every customer with a paid order and writes only the customers whose
   scores or segment moved, with a `segment_changes` row for each segment that did. It
   reads `customer_scores` only, never orders. Quintile boundaries are shop-wide (one new
   customer shifts them for everybody), so the ranking is never partial: what is
   incremental is reading orders, and writing.

Both steps write the narrow `customer_scores` rows, never `customers`: a shop's first run
writes a million short rows instead of rewriting a million wide ones, and the customer's
`updated_at` keeps saying when the customer's own data last changed.

Scores are quintiles: NTILE(5) over the customers ordered by the input (oldest last purchase
day first, fewest orders first, least spend first), then every customer tied on the input
takes the lowest tile among them, so equal customers always get equal scores whatever their
ids. Monetary is ranked within each currency, never across currencies.

The ranking sorts nothing. Under that rule a score is a step function of the input with
four steps, at the values found at the last position of tiles 1 to 4 (`Thresholds`); the
database reads those by walking partial indexes over the payers to a position, and one pass
over `customer_scores` compares every payer's inputs with them (docs/segments.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
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
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy import cast as sa_cast
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from campaigner.db.models import CustomerScore, Order, SegmentChange, UTCDateTime
from campaigner.segments.rfm_map import NO_SEGMENT, SegmentMap

scores = cast(Table, CustomerScore.__table__)
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
    Column("quiet", Integer),  # 1: a first placement not recorded as a move (`quiet`)
    prefixes=["TEMPORARY"],
)


@dataclass(frozen=True)
class RescoreResult:
    scored: int  # customers written because a score or the segment moved
    changed: int  # of those, customers whose segment moved (one history row each)
    # First placements not recorded as a move: their latest paid order is older than
    # ARRIVAL_WINDOW.
    placed: int = 0


def refresh_inputs(session: Session, customer_ids: list[int] | None, main_currency: str) -> None:
    """Recompute the RFM inputs of these customers (None: of every customer) from their paid
    orders: their number, the last payment time, and the currency and spend valued.

    A customer whose paid orders are all in one currency is valued in it; a customer who paid
    in several is valued in the shop's main currency, counting only the orders paid in it:
    amounts in different currencies are never added up.

    Takes the rescoring lock first (`lock`), as every writer of `customer_scores` must: a
    loader holding rows of the table while it waits for the lock, and a pass holding the
    lock while it waits for those rows (a first pass's DROP INDEX, a ranking's UPDATE), were
    a deadlock on PostgreSQL, and one loader's orders were rolled back.
    """
    lock(session)
    dialect = session.connection().dialect.name
    if customer_ids is None:
        for statement in _inputs_writes(None, main_currency, dialect):
            session.execute(statement)
        return
    ids = sorted(set(customer_ids))
    for start in range(0, len(ids), INPUTS_CHUNK):
        for statement in _inputs_writes(ids[start : start + INPUTS_CHUNK], main_currency, dialect):
            session.execute(statement)


INPUTS = ("orders", "last_paid_at", "currency", "spent", "first_paid_at")
# A customer's first placement is recorded as a move from "none" only when their first paid
# order is this recent: otherwise it is where they already were (a shop's orders from before
# it had segments, a history imported by CSV), and a segment_change rule would message
# every such customer on the day of the upgrade or import (docs/segments.md).
ARRIVAL_WINDOW = timedelta(days=2)
# While rescoring: SQLite's page cache, PostgreSQL's sort memory (docs/benchmarks.md).
RESCORE_CACHE_KIB = 256 * 1024
RESCORE_WORK_MEM_MB = 256


def payer_inputs(chunk: list[int] | None, main_currency: str) -> Select[Any]:
    """Each payer's inputs (`customer_id`, then INPUTS) from their paid orders, of these
    customers (None: of everybody).

    Every column read is in the orders' index per customer (migration segments_4): the
    groups are read along it, in order, with no sort and no look-up of the orders (on
    PostgreSQL, of the orders on pages the visibility map marks all-visible)."""
    o = orders.alias("o")
    # COALESCE(NULLIF(currency, ''), main) as one CASE: no function call per order. Deciding
    # "one currency" from the raw currencies instead, one comparison per order, measured no
    # faster at 3M orders along the index, on SQLite or PostgreSQL (docs/benchmarks.md).
    currency = case((o.c.currency != "", o.c.currency), else_=literal(main_currency))
    net = o.c.total - o.c.refunded
    paid = [o.c.status == "paid", o.c.paid_at.is_not(None)]
    grouped = (
        select(
            o.c.customer_id,
            func.count().label("orders"),
            func.max(o.c.paid_at).label("last_paid_at"),
            func.min(currency).label("only_currency"),
            func.max(currency).label("last_currency"),
            func.sum(net).label("spent"),
            func.sum(case((currency == main_currency, net), else_=0)).label("main_spent"),
            func.min(o.c.paid_at).label("first_paid_at"),
        )
        .where(*paid, *([] if chunk is None else [o.c.customer_id.in_(chunk)]))
        .group_by(o.c.customer_id)
        .subquery("grouped")
    )
    g = grouped.c
    single = g.only_currency == g.last_currency
    return select(
        g.customer_id,
        g.orders,
        g.last_paid_at,
        case((single, g.only_currency), else_=literal(main_currency)).label("currency"),
        # Never NULL for a payer: the thresholds walk spend in index order, where SQLite and
        # PostgreSQL put NULLs at opposite ends.
        func.coalesce(case((single, g.spent), else_=g.main_spent), 0).label("spent"),
        g.first_paid_at,
    ).where(g.customer_id.is_not(None))  # SQLite needs a WHERE before ON CONFLICT


def _inputs_writes(chunk: list[int] | None, main_currency: str, dialect: str) -> list[Any]:
    """An upsert of the payers' inputs from their paid orders (rows whose inputs did not move
    are left alone), and zero inputs for scored customers without a paid order any more."""
    spend = payer_inputs(chunk, main_currency)
    payers: Any
    if dialect in ("mysql", "mariadb"):
        # No WHERE on MariaDB's upsert; it leaves a row whose values do not change unwritten.
        mysql_upsert = mysql.insert(scores).from_select(["customer_id", *INPUTS], spend)
        payers = mysql_upsert.on_duplicate_key_update(
            {name: mysql_upsert.inserted[name] for name in INPUTS}
        )
    else:
        upsert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(scores)
        upsert = upsert.from_select(["customer_id", *INPUTS], spend)
        payers = upsert.on_conflict_do_update(
            index_elements=[scores.c.customer_id],
            set_={name: upsert.excluded[name] for name in INPUTS},
            where=or_(*(scores.c[name].is_distinct_from(upsert.excluded[name]) for name in INPUTS)),
        )
    o2 = orders.alias("o2")
    any_paid = exists().where(
        o2.c.customer_id == scores.c.customer_id,
        o2.c.status == "paid",
        o2.c.paid_at.is_not(None),
    )
    others = (
        update(scores)
        .where(
            *([] if chunk is None else [scores.c.customer_id.in_(chunk)]),
            scores.c.orders != 0,
            ~any_paid,
        )
        .values(orders=0, last_paid_at=None, currency=None, spent=None, first_paid_at=None)
    )
    # Zeros first: the two touch disjoint rows, and on a shop's first run the table is still
    # empty then, instead of holding a million payers to check for a paid order each.
    return [others, payers]


def tile_ends(count: int) -> list[int]:
    """The last position of NTILE(5)'s tiles 1 to 4 among `count` rows (1-based): the first
    count % 5 tiles hold one row more than the others, as NTILE deals them."""
    size, extra = divmod(count, 5)
    return [k * size + min(k, extra) for k in range(1, 5)]


@dataclass(frozen=True)
class Thresholds:
    """Where each score steps up: a value scores 1 + the number of thresholds it exceeds.

    With ties taking the lowest tile among them, a value's tile is the tile of its first
    possible position, 1 + the number of smaller values: the value scores above tile k
    exactly when more than `tile_ends(n)[k-1]` values are smaller than it, that is when it
    exceeds the value at that position in order. So the ranking needs four order
    statistics per score, read by walking a partial index (no sort), and one pass of
    comparisons. Values are kept as the driver returned them, so a tie is a tie.
    """

    recency: list[Any]  # last payment days
    frequency: list[Any]  # paid order counts
    monetary: dict[str | None, list[Any]]  # per currency: spend


def _is_currency(currency: str | None, column: Any = scores.c.currency) -> Any:
    if currency is None:  # never written so, but ranked as one currency as NTILE would
        return column.is_(None)
    return column == bindparam(None, currency, type_=String())


def _payers() -> Any:
    """The condition of the partial indexes the thresholds walk (migration segments_3),
    written out: SQLite uses a partial index only for a WHERE it can see implies the
    index's, which `orders > ?` does not."""
    return scores.c.orders > literal_column("0")


def _day(value: Any, dialect: str) -> Any:
    """The UTC day of a stored timestamp, comparable with another day."""
    if dialect == "sqlite":
        return func.substr(value, 1, 10)  # SQLite keeps 'YYYY-MM-DD HH:MM:SS…' text
    return sa_cast(value, Date)


def _walked(session: Session, column: Any, value: Any, ends: list[int], *where: Any) -> list[Any]:
    """`value` of the payers at these positions (1-based) in the order of `column`: each a
    walk along its partial index to the position."""
    found: dict[int, Any] = {}
    for position in sorted(set(ends)):
        found[position] = session.scalar(
            select(type_coerce(value, NullType()))
            .where(_payers(), *where)
            .order_by(column)
            .limit(1)
            .offset(position - 1)
        )
    return [found[position] for position in ends]


def thresholds(session: Session, dialect: str) -> Thresholds:
    """The shop's thresholds now, from the payers' inputs in `customer_scores`."""
    s = scores
    counts = {
        currency: int(count)
        for currency, count in session.execute(
            select(s.c.currency, func.count()).where(_payers()).group_by(s.c.currency)
        )
    }
    payers = sum(counts.values())
    if not payers:
        return Thresholds([], [], {})
    ends = tile_ends(payers)
    last, day = s.c.last_paid_at, _day(s.c.last_paid_at, dialect)
    return Thresholds(
        recency=_walked(session, last, day, ends),
        frequency=_walked(session, s.c.orders, s.c.orders, ends),
        monetary={
            currency: _walked(
                session, s.c.spent, s.c.spent, tile_ends(count), _is_currency(currency)
            )
            for currency, count in counts.items()
        },
    )


def _score(value: Any, steps: list[Any]) -> Any:
    """1 + the number of `steps` (ascending) that `value` exceeds."""
    return case(
        *(
            (value > bindparam(None, step, type_=NullType()), literal(5 - k))
            for k, step in enumerate(reversed(steps))
        ),
        else_=literal(1),
    )


def score_columns(source: Any, dialect: str, limits: Thresholds) -> tuple[Any, Any, Any]:
    """R, F and M of the payers' inputs in `source`, compared with the thresholds."""
    monetary = case(
        *(
            (_is_currency(currency, source.c.currency), _score(source.c.spent, steps))
            for currency, steps in limits.monetary.items()
        ),
        else_=null(),
    )
    return (
        _score(_day(source.c.last_paid_at, dialect), limits.recency),
        _score(source.c.orders, limits.frequency),
        monetary,
    )


def segment_of(segment_map: SegmentMap, r: Any, f: Any) -> Any:
    # A simple CASE: the cell is computed once per row, not once per segment.
    return case(
        {cell: literal(name) for cell, name in sorted(segment_map.cells.items())},
        value=r * 10 + f,
        else_=literal(NO_SEGMENT),
    )


def quiet(scored_at: Any, first_paid_at: Any, now: datetime) -> Any:
    """A first placement (no scores before; None: known to be one) of a customer whose first
    paid order is older than ARRIVAL_WINDOW: where they already were, not a move today."""
    old = first_paid_at < literal(now - ARRIVAL_WINDOW, UTCDateTime())
    return old if scored_at is None else and_(scored_at.is_(None), old)


def left_for_none(customer_id: Any, column: str = "old") -> Any:
    """Of this customer's latest move to "none" (every paid order refunded or cancelled),
    `column`: `old` is the segment they left, NULL for a customer never placed.

    A customer placed before comes back to that segment when they pay again, as if they had
    stayed: a move only if they come back elsewhere, never a first placement (which a
    welcome rule, from "none" to "new", would greet a second time)."""
    left = changes.alias("left")
    return (
        select(left.c[column])
        .where(left.c.customer_id == customer_id, left.c.new == literal(NO_SEGMENT))
        .order_by(left.c.changed_at.desc(), left.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def scores_query(
    segment_map: SegmentMap, dialect: str, limits: Thresholds, now: datetime
) -> Select[Any]:
    """The new scores and segment of every customer with a paid order, next to the ones
    stored now, in one SELECT: one pass of comparisons against the thresholds."""
    s = scores
    r, f, m = score_columns(s, dialect, limits)
    # Payers are every row with orders != 0; said so, SQLite scans the table instead of
    # looking every row up from the partial index on orders.
    scored = select(
        s.c.customer_id,
        *(s.c[name].label(f"old_{name}") for name in SCORES),
        case((quiet(s.c.scored_at, s.c.first_paid_at, now), 1), else_=0).label("quiet"),
        r.label("r"),
        f.label("f"),
        m.label("m"),
    ).where(s.c.orders != 0)
    scored_sub = scored.subquery("scored")
    return select(
        scored_sub.c.customer_id,
        scored_sub.c.r.label("recency_score"),
        scored_sub.c.f.label("frequency_score"),
        scored_sub.c.m.label("monetary_score"),
        segment_of(segment_map, scored_sub.c.r, scored_sub.c.f).label("segment"),
        *(scored_sub.c[f"old_{name}"] for name in SCORES),
        scored_sub.c.quiet,
    )


def lock(session: Session) -> None:
    """PostgreSQL: one rescoring pass at a time, until the transaction ends."""
    if session.connection().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RESCORE_LOCK})


def try_lock(session: Session) -> bool:
    """`lock` without waiting: False when another transaction holds it (PostgreSQL only;
    elsewhere writers are serialised by the database, and this is always True)."""
    if session.connection().dialect.name != "postgresql":
        return True
    taken = session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": RESCORE_LOCK})
    return bool(taken)


def rescore(session: Session, segment_map: SegmentMap, now: datetime) -> RescoreResult:
    """Rank the whole shop and write what moved; see the module docstring."""
    connection = session.connection()
    dialect = connection.dialect.name
    lock(session)
    session.execute(text("DROP TABLE IF EXISTS segment_rescored"))
    _rescored.create(connection)
    columns = ["customer_id", *SCORES, "old_segment", "quiet"]
    limits = thresholds(session, dialect)
    if limits.recency:  # a shop with payers
        new = scores_query(segment_map, dialect, limits, now).subquery("new")
        moved = or_(*(new.c[name].is_distinct_from(new.c[f"old_{name}"]) for name in SCORES))
        rows = select(
            new.c.customer_id, *(new.c[name] for name in SCORES), new.c.old_segment, new.c.quiet
        )
        session.execute(insert(_rescored).from_select(columns, rows.where(moved)))
    r = _rescored.c
    # First placements of customers placed before come back from where they left for "none".
    # Asked of first placements only; the EXISTS lets PostgreSQL start from the moves to
    # "none" when they are many (300k after an import: 1.8 s instead of 2.2-3.3).
    left = exists().where(changes.c.customer_id == r.customer_id, changes.c.new == NO_SEGMENT)
    session.execute(
        update(_rescored)
        .where(r.old_segment == NO_SEGMENT, r.segment != NO_SEGMENT, left)
        .values(old_segment=left_for_none(r.customer_id), quiet=0)
    )
    # Customers without a paid order any more (a refund, a merge) go back to "none".
    s = scores
    session.execute(
        insert(_rescored).from_select(
            columns,
            select(
                s.c.customer_id,
                null(),
                null(),
                null(),
                literal(NO_SEGMENT),
                s.c.segment,
                literal(0),
            ).where(s.c.orders == 0),
        )
    )
    moved = r.segment != r.old_segment
    moves = and_(moved, r.quiet == 0)
    session.execute(
        insert(changes).from_select(
            ["customer_id", "old", "new", "changed_at"],
            select(r.customer_id, r.old_segment, r.segment, literal(now, UTCDateTime())).where(
                moves
            ),
        )
    )
    changed = session.scalar(select(func.count()).select_from(_rescored).where(moves))
    placed = session.scalar(select(func.count()).select_from(_rescored).where(moved, r.quiet == 1))
    written = {**{name: r[name] for name in SCORES}, "scored_at": literal(now, UTCDateTime())}
    scored = _count(
        session.execute(update(scores).where(scores.c.customer_id == r.customer_id).values(written))
    )
    session.execute(
        delete(scores).where(
            scores.c.customer_id.in_(select(r.customer_id).where(r.segment == NO_SEGMENT))
        )
    )
    session.execute(text("DROP TABLE segment_rescored"))
    return RescoreResult(scored=scored, changed=changed or 0, placed=placed or 0)


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
