"""A pass over everybody on a (nearly) empty `customer_scores` fills it afresh: the same rows,
history and counts as the usual pass, the migration's indexes afterwards, and the previous
state whole when the pass fails or its process is killed half-way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, Index, insert, literal_column, select, text, update
from sqlalchemy.orm import Session, sessionmaker
from test_scoring import MAIN, build_shop
from test_thresholds import awkward_shop, store

from campaigner.clock import FixedClock
from campaigner.config import CustomerDefaults
from campaigner.customers.loader import load_orders, refresh_customer_stats
from campaigner.db.models import Base, Customer, CustomerScore, Order, SegmentChange
from campaigner.segments import SegmentMap, fill, recompute
from campaigner.segments.fill import _inputs, _thresholds, wanted
from campaigner.segments.scoring import INPUTS, scores, thresholds, tile_ends


def state(session: Session) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every scores row, whole, and the history, in a stable order."""
    rows = session.execute(select(CustomerScore.__table__).order_by(CustomerScore.customer_id))
    moves = session.execute(
        select(
            SegmentChange.customer_id,
            SegmentChange.old,
            SegmentChange.new,
            SegmentChange.changed_at,
        ).order_by(SegmentChange.customer_id, SegmentChange.id)
    )
    return [tuple(row) for row in rows], [tuple(move) for move in moves]


def both_ways(sessions: sessionmaker[Session], clock: FixedClock) -> dict[bool, Any]:
    """Each way of passing over everybody, from the same state, each rolled back."""
    seen: dict[bool, Any] = {}
    for afresh in (True, False):
        with sessions() as session:
            result = recompute(
                session, SegmentMap.standard(), clock.now(), MAIN, None, afresh=afresh
            )
            seen[afresh] = (result, state(session))
            session.rollback()
    return seen


# Built last whichever way the fill ranks: failing there fails after every write.
LAST_INDEX = "ix_customer_scores_segment"


def indexes(engine: Engine) -> dict[str, str]:
    """Each index of customer_scores by name, with the definition the database keeps."""
    if engine.dialect.name == "sqlite":
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"
    else:
        query = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :t"
    with engine.connect() as connection:
        rows = connection.execute(text(query), {"t": "customer_scores"})
        return {str(name): str(definition) for name, definition in rows}


def test_a_first_pass_fills_afresh_exactly_what_the_usual_pass_writes(
    sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    with sessions.begin() as session:
        build_shop(session, clock)
        assert wanted(session)  # an empty table
    seen = both_ways(sessions, clock)
    assert seen[True] == seen[False]
    result, (rows, moves) = seen[True]
    # A first placement is a move only after a recent first order (ARRIVAL_WINDOW): none of
    # the 20 (one paid yesterday, but first 11 days ago), either way.
    assert (result.scored, result.changed, result.placed, len(rows)) == (20, 0, 20, 20)
    assert moves == []


def test_a_first_pass_over_a_shop_without_payers_writes_nothing_either_way(
    sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    """Customers imported before the shop's first paid order (one pending, one refunded):
    the daemon's first pass fills afresh and finds no payer to rank."""
    with sessions.begin() as session:
        for external_id, status in (("waiting", "pending"), ("refunded", "refunded")):
            customer = Customer(external_id=external_id)
            session.add(customer)
            session.flush()
            session.add(
                Order(
                    external_id=f"{external_id}-o",
                    customer_id=customer.id,
                    total=Decimal(50),
                    status=status,
                    paid_at=clock.now() - timedelta(days=1),
                )
            )
        session.flush()
        refresh_customer_stats(session, session.scalars(select(Customer.id)).all())
        assert wanted(session)
    seen = both_ways(sessions, clock)
    assert seen[True] == seen[False]
    result, (rows, moves) = seen[True]
    assert (result.scored, result.changed, result.placed, rows, moves) == (0, 0, 0, [], [])


def test_filling_over_earlier_scores_keeps_unmoved_stamps_and_records_every_move(
    sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    """Rows already there: some scores move, some do not (their `scored_at` stays), a
    customer's only order is refunded (back to none), a new payer arrives (written behind a
    loader's back, paid today: its first placement is a move, either way)."""
    with sessions.begin() as session:
        build_shop(session, clock)
        recompute(session, SegmentMap.standard(), clock.now(), MAIN)
    clock.advance(timedelta(days=1))
    with sessions.begin() as session:
        load_orders(
            session,
            [
                {
                    "external_id": "n1",
                    "customer_id": "pending",
                    "total": "80",
                    "paid_at": clock.now(),
                }
            ],
            CustomerDefaults(),
            now=clock.now(),
        )
        c17 = session.scalars(select(Customer.id).where(Customer.external_id == "c17")).one()
        session.execute(update(Order).where(Order.customer_id == c17).values(status="refunded"))
        refresh_customer_stats(session, [c17], main_currency=MAIN)
    seen = both_ways(sessions, clock)
    assert seen[True] == seen[False]
    result, (rows, moves) = seen[True]
    at = list(CustomerScore.__table__.columns.keys()).index("scored_at")
    stamps = {row[at] for row in rows}
    assert stamps == {clock.now(), clock.now() - timedelta(days=1)}  # moved and unmoved rows
    assert (c17, "new", "none", clock.now()) in moves
    pending = session_id(sessions, "pending")
    assert [move for move in moves if move[0] == pending] == [(pending, "none", "new", clock.now())]
    assert (result.scored, result.changed, result.placed) == (3, 2, 0)


def test_customers_back_from_none_come_back_where_they_were_either_way(
    sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    """Every paid order of c17 ("new") and c18 (two orders) refunded: back to none. Forty
    days later each pays again: c17 written behind the loaders' back, c18 by a loader that
    refreshed its inputs but did not rank (its row unscored, as an interrupted import leaves
    it). Both come back to the segment they left, not as newcomers from none: c17 to "new"
    (no move: no second welcome), c18 elsewhere (a move from where it was); the same rows,
    history and counts whichever way the pass ranks."""
    with sessions.begin() as session:
        build_shop(session, clock)
        recompute(session, SegmentMap.standard(), clock.now(), MAIN)
        c17, c18 = (
            session.scalars(select(Customer.id).where(Customer.external_id == name)).one()
            for name in ("c17", "c18")
        )
    clock.advance(timedelta(days=1))
    with sessions.begin() as session:
        session.execute(
            update(Order).where(Order.customer_id.in_([c17, c18])).values(status="refunded")
        )
        refresh_customer_stats(session, [c17, c18], main_currency=MAIN)
        recompute(session, SegmentMap.standard(), clock.now(), MAIN, [c17, c18])
    clock.advance(timedelta(days=40))
    with sessions.begin() as session:
        session.add(
            Order(external_id="c17-back", customer_id=c17, total=Decimal(9), paid_at=clock.now())
        )
        back = {"external_id": "c18-back", "customer_id": "c18", "total": "9"}
        load_orders(
            session, [{**back, "paid_at": clock.now()}], CustomerDefaults(), now=clock.now()
        )
    seen = both_ways(sessions, clock)
    assert seen[True] == seen[False]
    result, (_, moves) = seen[True]
    assert [move[1:3] for move in moves if move[0] == c17] == [("new", "none")]
    assert [move[1:3] for move in moves if move[0] == c18] == [
        ("potential_loyalist", "none"),
        ("potential_loyalist", "new"),
    ]
    assert result.placed == 0


def session_id(sessions: sessionmaker[Session], external_id: str) -> int:
    with sessions() as session:
        return session.scalars(select(Customer.id).where(Customer.external_id == external_id)).one()


def test_the_indexes_after_a_first_pass_are_the_migrations(
    sessions: sessionmaker[Session], engine: Engine, clock: FixedClock
) -> None:
    before = indexes(engine)
    with sessions.begin() as session:
        build_shop(session, clock)
        recompute(session, SegmentMap.standard(), clock.now(), MAIN, afresh=True)
    assert indexes(engine) == before
    assert {"ix_customer_scores_segment", "ix_customer_scores_orders"} <= set(before)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def previous_pass(sessions: sessionmaker[Session], engine: Engine, clock: FixedClock) -> Any:
    """Scores from a usual pass, a month before the fill: the rows and indexes to keep."""
    with sessions.begin() as session:
        build_shop(session, clock)
        recompute(session, SegmentMap.standard(), clock.now(), MAIN, afresh=False)
    clock.advance(timedelta(days=30))
    with sessions() as session:
        before = state(session)
    return before, indexes(engine)  # after the session: SQLite's reads begin IMMEDIATE


def test_a_failed_fill_leaves_the_previous_rows_and_indexes(
    sessions: sessionmaker[Session], engine: Engine, clock: FixedClock, monkeypatch: Any
) -> None:
    """Failing at the worst moment: the rows replaced and the history written, the last
    index (on `segment`, built last by both ways of ranking) not built yet."""
    before, before_indexes = previous_pass(sessions, engine, clock)

    build = Index.create

    def fail(self: Index, bind: Any, checkfirst: bool = False) -> None:
        if self.name == LAST_INDEX:
            raise RuntimeError("disk full")
        build(self, bind, checkfirst)

    monkeypatch.setattr(Index, "create", fail)
    with pytest.raises(RuntimeError, match="disk full"), sessions.begin() as session:
        recompute(session, SegmentMap.standard(), clock.now(), MAIN, afresh=True)
    monkeypatch.undo()
    with sessions() as session:
        assert state(session) == before
    assert indexes(engine) == before_indexes


KILLED_MID_PASS = f"""
import os, signal, sys
from datetime import datetime
from sqlalchemy import Index
from campaigner.db import create_engine_for, session_factory
from campaigner.segments import SegmentMap, fill, recompute

build = Index.create

def die(self, bind, checkfirst=False):
    if self.name == {LAST_INDEX!r}:  # rows and history written, nothing committed
        os.kill(os.getpid(), signal.SIGKILL)
    build(self, bind, checkfirst)

Index.create = die
sessions = session_factory(create_engine_for(sys.argv[1]))
with sessions.begin() as session:
    recompute(session, SegmentMap.standard(), datetime.fromisoformat(sys.argv[2]), "IRT",
              afresh=True)
"""


def killed_by(script: str, db_url: str, clock: FixedClock) -> None:
    """Run a first pass in a process that `script` kills with SIGKILL before it commits."""
    killed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), db_url, clock.now().isoformat()],
        env={**os.environ},
        timeout=120,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL


def test_a_fill_killed_mid_pass_leaves_the_previous_rows_and_indexes(
    sessions: sessionmaker[Session], engine: Engine, clock: FixedClock, db_url: str
) -> None:
    before, before_indexes = previous_pass(sessions, engine, clock)
    engine.dispose()
    killed_by(KILLED_MID_PASS, db_url, clock)
    with sessions() as session:
        assert state(session) == before
    assert indexes(engine) == before_indexes
    with sessions.begin() as session:  # and the next one completes
        recompute(session, SegmentMap.standard(), clock.now(), MAIN, afresh=True)
    with sessions() as session:
        assert len(state(session)[0]) == len(before[0])
    assert indexes(engine) == before_indexes


def test_a_fill_failing_without_its_primary_key_leaves_the_previous_rows_and_key(
    sessions: sessionmaker[Session], engine: Engine, clock: FixedClock, monkeypatch: Any
) -> None:
    """PostgreSQL drops the primary key for the INSERT: failing while it is rebuilt."""
    if engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL rebuilds the primary key")
    before, before_indexes = previous_pass(sessions, engine, clock)

    def fail(constraint: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(fill, "AddConstraint", fail)
    with pytest.raises(RuntimeError, match="disk full"), sessions.begin() as session:
        recompute(session, SegmentMap.standard(), clock.now(), MAIN, afresh=True)
    monkeypatch.undo()
    with sessions() as session:
        assert state(session) == before
    assert indexes(engine) == before_indexes
    assert "pk_customer_scores" in before_indexes


KILLED_WITHOUT_KEY = """
import os, signal, sys
from datetime import datetime
from campaigner.db import create_engine_for, session_factory
from campaigner.segments import SegmentMap, fill, recompute

def die(constraint):  # rows written, the primary key dropped, nothing committed
    os.kill(os.getpid(), signal.SIGKILL)

fill.AddConstraint = die
sessions = session_factory(create_engine_for(sys.argv[1]))
with sessions.begin() as session:
    recompute(session, SegmentMap.standard(), datetime.fromisoformat(sys.argv[2]), "IRT",
              afresh=True)
"""


def test_a_fill_killed_without_its_primary_key_leaves_the_previous_rows_and_key(
    sessions: sessionmaker[Session], engine: Engine, clock: FixedClock, db_url: str
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL rebuilds the primary key")
    before, before_indexes = previous_pass(sessions, engine, clock)
    engine.dispose()
    killed_by(KILLED_WITHOUT_KEY, db_url, clock)
    with sessions() as session:
        assert state(session) == before
    assert indexes(engine) == before_indexes


def aside(session: Session) -> None:
    """The fill's temporary table of inputs, holding the inputs stored in customer_scores."""
    _inputs.create(session.connection())
    columns = ["customer_id", *INPUTS]
    session.execute(
        insert(_inputs).from_select(columns, select(*(scores.c[name] for name in columns)))
    )


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 6, 9, 23, 137, 1009])
def test_the_fills_thresholds_are_the_walked_ones_on_ties_and_two_currencies(
    sessions: sessionmaker[Session], engine: Engine, clock: FixedClock, count: int
) -> None:
    """Counted (recency, frequency) and percentile (spend) thresholds against the index walks
    of the usual pass (test_thresholds.py checks those against NTILE), on few distinct values
    so that nearly every threshold falls inside a tie group, and one shop where everybody
    ties."""
    if engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL ranks aside")
    shops = [awkward_shop(count, clock.now())]
    shops.append([(clock.now(), 2, "IRT", Decimal("12.30"))] * min(count, 8))
    for shop in shops:
        with sessions() as session:
            store(session, shop)
            aside(session)
            limits, payers = _thresholds(session, "postgresql")
            assert payers == len(shop)
            assert limits == thresholds(session, "postgresql")
            session.rollback()


@pytest.mark.parametrize("count", [1, 4, 7, 76, 163, 997, 99_991, 997_811])
def test_spend_thresholds_are_exact_positions_however_the_fractions_round(
    sessions: sessionmaker[Session], engine: Engine, count: int
) -> None:
    """Spend 1, 2, …, count: the value at a position is the position, so a fraction rounded
    to the next row would show. (997,811 is the benchmark shop's main-currency payers.)"""
    if engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL ranks aside")
    with sessions() as session:
        _inputs.create(session.connection())
        series = select(
            literal_column("n"),
            literal_column("1"),
            literal_column("now()"),
            literal_column("'IRT'"),
            literal_column("n"),
            literal_column("now()"),
        ).select_from(text("generate_series(1, :count) AS n").bindparams(count=count))
        session.execute(insert(_inputs).from_select(["customer_id", *INPUTS], series))
        limits, payers = _thresholds(session, "postgresql")
        assert payers == count
        assert limits.monetary == {"IRT": [Decimal(end) for end in tile_ends(count)]}
        assert limits.frequency == [1, 1, 1, 1]
        session.rollback()
