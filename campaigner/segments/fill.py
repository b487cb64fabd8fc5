"""A shop's first segmenting pass: fill `customer_scores` afresh, then build its indexes.

The usual pass upserts every payer's inputs, then updates the rows whose scores moved: on a
shop without segments that writes a million rows twice, each write a random insert into the
table's four secondary indexes (every segment changes, so PostgreSQL cannot update in
place). Here, with the table (nearly) empty, the pass instead:

1. drops the secondary indexes, inside the pass's transaction (a failed pass gets them back
   with its rollback, on SQLite and PostgreSQL alike), and empties the table, keeping the
   previous scores aside;
2. ranks, in one of two ways, each the cheaper on its database:
   - PostgreSQL groups every payer's inputs into a temporary table, reads the quintile
     thresholds from it (recency and frequency from one scan counting each day and order
     count, spend per currency sorted by `percentile_disc`), then writes the rows with
     inputs and scores in one INSERT, in `customer_id` order. (The other way would update
     a million rows it has just inserted: a second version of each, in every index.)
   - SQLite inserts the inputs straight into the table, builds the indexes on inputs, walks
     them for the thresholds as the usual pass does, and writes the scores with one UPDATE
     in place: at 1M customers 0.8 s of CPU, where the three sorts of a temporary table
     cost 2 s and the temporary table itself one more write of every payer;
3. keeps `scored_at` for the rows whose scores did not move, and records the segment moves
   (a payer back from "none" from the segment they left, as the usual pass does);
4. creates the remaining indexes from the model (the migration's names and definitions):
   one sorted build each instead of a million random inserts; on PostgreSQL the primary
   key too, dropped for the INSERT.

It ranks and writes exactly what the usual pass would (tests/segments/test_fill.py). While
it runs, PostgreSQL readers of `customer_scores` wait (DROP INDEX locks the table until
commit): acceptable for a pass that runs once per shop.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    Numeric,
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
    or_,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.schema import AddConstraint, DropConstraint
from sqlalchemy.types import NullType

from campaigner.db.models import Customer, UTCDateTime
from campaigner.segments.rfm_map import NO_SEGMENT, SegmentMap
from campaigner.segments.scoring import (
    INPUTS,
    SCORES,
    RescoreResult,
    Thresholds,
    _day,
    _is_currency,
    changes,
    left_for_none,
    lock,
    payer_inputs,
    quiet,
    score_columns,
    scores,
    segment_of,
    thresholds,
    tile_ends,
)

# A pass over everybody fills afresh when the table holds fewer rows than this share of
# the customers: a shop's first pass (none), or one whose first pass found few payers.
# Above it most payers already have a row, and the usual pass writes only what moved.
AFRESH_BELOW = 0.1
# PostgreSQL's memory for building each index in one sort (default 64 MB).
BUILD_MEMORY_MB = 256

_inputs = Table(
    "segment_inputs",
    MetaData(),
    Column("customer_id", Integer),
    Column("orders", Integer),
    Column("last_paid_at", UTCDateTime),
    Column("currency", String(8)),
    Column("spent", Numeric(18, 2)),
    Column("first_paid_at", UTCDateTime),
    prefixes=["TEMPORARY"],
)
_previous = Table(
    "segment_previous",
    MetaData(),
    Column("customer_id", Integer, primary_key=True),
    *(Column(name, Integer) for name in SCORES[:3]),
    Column("segment", String(24)),
    Column("scored_at", UTCDateTime),
    prefixes=["TEMPORARY"],
)


def wanted(session: Session) -> bool:
    """Whether a pass over everybody should fill the table afresh (AFRESH_BELOW)."""
    held = session.scalar(select(func.count()).select_from(scores)) or 0
    customers = session.scalar(select(func.count()).select_from(Customer)) or 0
    return held < customers * AFRESH_BELOW


def fill(
    session: Session,
    segment_map: SegmentMap,
    now: datetime,
    main_currency: str,
) -> RescoreResult:
    """Every customer's inputs and scores, written once; see the module docstring."""
    connection = session.connection()
    dialect = connection.dialect.name
    lock(session)
    secondary = sorted(scores.indexes, key=lambda index: str(index.name))
    for index in secondary:
        index.drop(connection)
    session.execute(text(f"DROP TABLE IF EXISTS {_previous.name}"))
    _previous.create(connection)
    kept = ["customer_id", *SCORES, "scored_at"]
    session.execute(insert(_previous).from_select(kept, select(*(scores.c[n] for n in kept))))
    session.execute(delete(scores))
    if dialect == "postgresql":
        # The primary key and each index built in one sort (the default is 64 MB).
        session.execute(text(f"SET LOCAL maintenance_work_mem = '{BUILD_MEMORY_MB}MB'"))
        # The planner then knows how few there are: probed, not hashed.
        session.execute(text(f"ANALYZE {_previous.name}"))
        payers = _ranked_aside(session, segment_map, now, main_currency, dialect)
        built: list[Index] = []
    else:
        payers, built = _ranked_in_place(session, segment_map, now, main_currency, dialect)

    _came_back(session)
    s, p = scores.c, _previous.c
    stamp = literal(now, UTCDateTime())
    old = func.coalesce(p.segment, literal(NO_SEGMENT))
    history = ["customer_id", "old", "new", "changed_at"]
    # A first placement is a move only after a recent order (scoring.ARRIVAL_WINDOW): on a
    # shop's first pass, only its newest customers.
    session.execute(
        insert(changes).from_select(
            history,
            select(s.customer_id, old, s.segment, stamp)
            .select_from(scores.outerjoin(_previous, p.customer_id == s.customer_id))
            .where(s.segment != old, ~quiet(p.scored_at, s.first_paid_at, now))
            .order_by(s.customer_id),
        )
    )
    gone = ~exists().where(s.customer_id == p.customer_id)
    session.execute(
        insert(changes).from_select(
            history,
            select(p.customer_id, p.segment, literal(NO_SEGMENT), stamp).where(
                gone, p.segment != NO_SEGMENT
            ),
        )
    )
    for index in secondary:
        if index not in built:
            index.create(connection)

    # Counted from the previous rows (none on a first pass) and along the segment index, not
    # from a million new rows.
    def previous_where(*where: Any) -> int:
        return session.scalar(select(func.count()).select_from(_previous).where(*where)) or 0

    kept_row = exists().where(s.customer_id == p.customer_id)
    scored_before = p.scored_at.is_not(None)
    unmoved = previous_where(
        kept_row.where(*(s[name].is_not_distinct_from(p[name]) for name in SCORES))
    )
    moved = previous_where(scored_before, kept_row.where(s.segment != p.segment))
    removed = previous_where(gone)
    left = previous_where(gone, p.segment != NO_SEGMENT)
    in_none = session.scalar(select(func.count()).where(s.segment == NO_SEGMENT)) or 0
    placed_before = previous_where(scored_before, kept_row.where(s.segment != NO_SEGMENT))
    # One scan (0.06 s at 1M on SQLite): with `orders > 0` written out, SQLite walked the
    # partial index on orders and looked every row up (0.47 s).
    arrivals = (
        session.scalar(
            select(func.count()).where(
                ~quiet(None, s.first_paid_at, now),
                s.segment != NO_SEGMENT,
                ~exists().where(p.customer_id == s.customer_id, scored_before),
            )
        )
        or 0
    )
    session.execute(text(f"DROP TABLE {_previous.name}"))
    return RescoreResult(
        scored=payers - unmoved + removed,
        changed=moved + arrivals + left,
        placed=payers - in_none - placed_before - arrivals,
    )


def _came_back(session: Session) -> None:
    """Payers placed before who went back to "none" get the segment they left as their
    previous row (scoring.left_for_none), stamped when they left: placed where they were, as
    the usual pass places them, a move only if elsewhere. Read from the history's moves to
    "none", so nothing on a shop's first pass; a row left unscored by an interrupted load
    gives way to it, as the usual pass sees no segment there either."""
    c, p = changes.c, _previous.c
    came_back = and_(
        c.new == NO_SEGMENT,
        c.id == left_for_none(c.customer_id, "id"),
        exists().where(scores.c.customer_id == c.customer_id),
    )
    session.execute(
        delete(_previous).where(
            p.scored_at.is_(None), p.customer_id.in_(select(c.customer_id).where(came_back))
        )
    )
    session.execute(
        insert(_previous).from_select(
            ["customer_id", "segment", "scored_at"],
            select(c.customer_id, c.old, c.changed_at).where(
                came_back, ~exists().where(p.customer_id == c.customer_id)
            ),
        )
    )


def _ranked_aside(
    session: Session, segment_map: SegmentMap, now: datetime, main_currency: str, dialect: str
) -> int:
    """PostgreSQL: inputs into a temporary table, thresholds from it, then the rows with
    inputs and scores in one INSERT. Returns the number of payers."""
    connection = session.connection()
    session.execute(text(f"DROP TABLE IF EXISTS {_inputs.name}"))
    _inputs.create(connection)
    # Grouped along the orders' index per customer (no sort), never by a hash table of a
    # million groups, which spills (4.3 s where sorting took 3.2 s, before the index).
    session.execute(text("SET LOCAL enable_hashagg = off"))
    session.execute(
        insert(_inputs).from_select(["customer_id", *INPUTS], payer_inputs(None, main_currency))
    )
    session.execute(text("SET LOCAL enable_hashagg TO DEFAULT"))
    limits, payers = _thresholds(session, dialect)
    if not payers:
        # No thresholds to score against: an empty CASE is not SQL (a shop's customers
        # imported before its first paid order, every order refunded).
        session.execute(text(f"DROP TABLE {_inputs.name}"))
        return 0

    i, p = _inputs.c, _previous.c
    r, f, m = score_columns(_inputs, dialect, limits)
    scored = select(
        i.customer_id, *(i[name] for name in INPUTS), r.label("r"), f.label("f"), m.label("m")
    ).subquery("scored")
    new = select(
        *(scored.c[name] for name in ("customer_id", *INPUTS)),
        scored.c.r.label("recency_score"),
        scored.c.f.label("frequency_score"),
        scored.c.m.label("monetary_score"),
        segment_of(segment_map, scored.c.r, scored.c.f).label("segment"),
    ).subquery("new")
    moved = or_(*(new.c[name].is_distinct_from(p[name]) for name in SCORES))
    stamp = literal(now, UTCDateTime())
    rows = (
        select(
            *(new.c[name] for name in ("customer_id", *INPUTS, *SCORES)),
            func.coalesce(case((moved, stamp)), p.scored_at).label("scored_at"),
        )
        .select_from(new.outerjoin(_previous, p.customer_id == new.c.customer_id))
        # The FK checks then read `customers` in page order (the sort costs ~0.3 s).
        .order_by(new.c.customer_id)
    )
    # The primary key built after the rows, in one sort, instead of maintained row by row:
    # at 1M rows, at load 6, 18.0 s became 9.6 + 1.4 s in psql, 8.9 s of the pass's server
    # CPU 7.7 s (docs/benchmarks.md). Only this table is locked for it, and already is (DROP
    # INDEX); a duplicate would fail the build, and the pass with it.
    session.execute(DropConstraint(scores.primary_key))
    session.execute(
        insert(scores).from_select([*("customer_id", *INPUTS, *SCORES), "scored_at"], rows)
    )
    session.execute(AddConstraint(scores.primary_key))
    session.execute(text(f"DROP TABLE {_inputs.name}"))
    return payers


def _ranked_in_place(
    session: Session, segment_map: SegmentMap, now: datetime, main_currency: str, dialect: str
) -> tuple[int, list[Index]]:
    """SQLite: inputs straight into the table, the indexes on inputs built, the thresholds
    walked along them as the usual pass does (instead of three more sorts of a million
    rows), then the scores written by one UPDATE in place. Returns the number of payers and
    the indexes built."""
    connection = session.connection()
    # The groups come out in customer_id order: appended to the primary key.
    session.execute(
        insert(scores).from_select(["customer_id", *INPUTS], payer_inputs(None, main_currency))
    )
    on_inputs = [
        index
        for index in sorted(scores.indexes, key=lambda index: str(index.name))
        if not {column.name for column in index.columns} & set(SCORES)
    ]
    for index in on_inputs:
        index.create(connection)
    limits = thresholds(session, dialect)
    payers = session.scalar(select(func.count()).select_from(scores)) or 0
    if not payers:
        return 0, on_inputs
    s, p = scores.c, _previous.c
    r, f, m = score_columns(scores, dialect, limits)
    session.execute(
        update(scores).values(
            recency_score=r,
            frequency_score=f,
            monetary_score=m,
            segment=segment_of(segment_map, r, f),
            scored_at=literal(now, UTCDateTime()),
        )
    )
    # The few rows whose scores did not move keep their stamp.
    unmoved = exists().where(
        p.customer_id == s.customer_id, *(s[name].is_not_distinct_from(p[name]) for name in SCORES)
    )
    previous_stamp = select(p.scored_at).where(p.customer_id == s.customer_id).scalar_subquery()
    session.execute(update(scores).where(unmoved).values(scored_at=previous_stamp))
    return payers, on_inputs


def _thresholds(session: Session, dialect: str) -> tuple[Thresholds, int]:
    """The thresholds of the payers in the temporary table, the same order statistics the
    usual pass walks its indexes for, in two scans instead of a sort per score: recency days
    and order counts take few distinct values, so one scan counts each value (and the payers
    per currency) and the order statistics are read from the counts; spend takes nearly as
    many values as payers and is sorted, once per currency, by `percentile_disc`."""
    i = _inputs.c
    day = type_coerce(_day(i.last_paid_at, dialect), NullType())
    orders = type_coerce(i.orders, NullType())
    counted = select(
        day, orders, i.currency, func.count(), func.grouping(day), func.grouping(orders)
    ).group_by(func.grouping_sets(day, orders, i.currency))
    days: dict[Any, int] = {}
    order_counts: dict[Any, int] = {}
    counts: dict[str | None, int] = {}
    for value_day, value_orders, currency, count, not_day, not_orders in session.execute(counted):
        # GROUPING() is 0 in the set grouped by that column: a NULL there is a value.
        if not not_day:
            days[value_day] = int(count)
        elif not not_orders:
            order_counts[value_orders] = int(count)
        else:
            counts[currency] = int(count)
    payers = sum(counts.values())
    if not payers:
        return Thresholds([], [], {}), 0
    ends = tile_ends(payers)
    limits = Thresholds(
        recency=_counted(days, ends),
        frequency=_counted(order_counts, ends),
        monetary=_percentiles(session, counts),
    )
    return limits, payers


def _counted(histogram: dict[Any, int], ends: list[int]) -> list[Any]:
    """The values at these positions (1-based) in ascending order, NULLs last as PostgreSQL
    sorts them, of the values counted in `histogram`."""
    found: dict[int, Any] = {}
    wanted = sorted(set(ends))
    seen = 0
    for value in sorted(histogram, key=lambda value: (value is None, value)):
        seen += histogram[value]
        while wanted and wanted[0] <= seen:
            found[wanted.pop(0)] = value
    return [found[position] for position in ends]


def _percentiles(session: Session, counts: dict[str | None, int]) -> dict[str | None, list[Any]]:
    """Each currency's spend at its tile ends, exactly: `percentile_disc(f)` returns the
    value at position ceil(f * n), and f = (position - 0.5) / n keeps the float product
    within 0.5 of position - 0.5 (position / n lands one row late for some n, 76 the
    first). One scan; each aggregate sorts its currency's payers only. Spend is never NULL
    for a payer (payer_inputs), which percentile_disc would skip."""
    i = _inputs.c
    currencies = sorted(counts, key=lambda currency: (currency is None, currency or ""))
    fractions = [
        [(position - 0.5) / counts[currency] for position in tile_ends(counts[currency])]
        for currency in currencies
    ]
    picked = [
        type_coerce(
            func.percentile_disc(bindparam(None, at, type_=postgresql.ARRAY(Float())))
            .within_group(i.spent)
            .filter(_is_currency(currency, i.currency)),
            NullType(),
        )
        for currency, at in zip(currencies, fractions, strict=True)
    ]
    row = session.execute(select(*picked)).one()
    return {currency: list(values) for currency, values in zip(currencies, row, strict=True)}
