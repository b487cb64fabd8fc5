"""The daemon's daily pass reads only the orders changed since the previous pass, yet leaves
every customer's inputs as a full recomputation would; everybody's the first time and when
the main currency changed. A request (webhook, ingest API) never waits for a pass: what it
leaves to the next one is placed there, with its move."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from conftest import (
    add_paid_order,
    create_mariadb_database,
    drop_mariadb_database,
    require_mariadb,
)
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.config import CustomerDefaults
from campaigner.customers import loader
from campaigner.customers.loader import load_orders
from campaigner.db import create_engine_for, session_factory, upgrade
from campaigner.db.models import Customer, CustomerScore, Order, SegmentChange, SyncState
from campaigner.segments import SegmentMap, recompute
from campaigner.segments import daily as daily_module
from campaigner.segments.daily import OWED, STATE, daily, owe, place_owed

MAIN = "IRT"
STANDARD = SegmentMap.standard()


def inputs(sessions: sessionmaker[Session]) -> dict[str, tuple[object, ...]]:
    with sessions() as session:
        rows = session.execute(
            select(
                Customer.external_id,
                CustomerScore.orders,
                CustomerScore.currency,
                CustomerScore.spent,
                CustomerScore.segment,
            ).join(CustomerScore, CustomerScore.customer_id == Customer.id)
        )
        return {row[0]: tuple(row[1:]) for row in rows}


def run_daily(sessions: sessionmaker[Session], clock: FixedClock, currency: str = MAIN) -> None:
    with sessions.begin() as session:
        daily(session, SegmentMap.standard(), clock.now(), currency)


def set_spent_behind_its_back(sessions: sessionmaker[Session], external_id: str) -> None:
    """A stale input nothing will correct but a full recomputation."""
    with sessions.begin() as session:
        customer_id = session.scalar(select(Customer.id).where(Customer.external_id == external_id))
        session.execute(
            update(CustomerScore)
            .where(CustomerScore.customer_id == customer_id)
            .values(spent=Decimal(999))
        )


def test_the_first_pass_refreshes_everybody_then_only_changed_orders(
    sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    for n in range(1, 7):
        add_paid_order(sessions, clock, n)  # behind the loaders' back: no inputs yet
    run_daily(sessions, clock)
    first = inputs(sessions)
    assert set(first) == {f"c{n}" for n in range(1, 7)}
    assert first["c1"][:3] == (1, MAIN, Decimal(1))

    set_spent_behind_its_back(sessions, "c2")  # no order of c2 changes: the pass keeps it
    with sessions.begin() as session:  # an order changed without refreshing its customer
        session.execute(update(Order).where(Order.external_id == "o1").values(total=Decimal(50)))
    add_paid_order(sessions, clock, 7)  # a new order, inputs not refreshed either
    run_daily(sessions, clock)
    second = inputs(sessions)
    assert second["c1"][:3] == (1, MAIN, Decimal(50))
    assert second["c7"][:3] == (1, MAIN, Decimal(1))
    assert second["c2"][2] == Decimal(999)  # not read again: its orders did not change
    with sessions.begin() as session:
        recompute(session, SegmentMap.standard(), clock.now(), MAIN)
    full = inputs(sessions)
    assert {key: value for key, value in second.items() if key != "c2"} == {
        key: value for key, value in full.items() if key != "c2"
    }


def test_a_changed_main_currency_refreshes_everybody(
    sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    for n in range(1, 4):
        add_paid_order(sessions, clock, n)
    run_daily(sessions, clock)
    set_spent_behind_its_back(sessions, "c2")
    run_daily(sessions, clock, currency="USD")
    assert inputs(sessions)["c2"][1:3] == ("USD", Decimal(1))


def test_a_pass_on_an_unchanged_shop_reads_no_customer_again(
    sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    for n in range(1, 4):
        add_paid_order(sessions, clock, n)
    run_daily(sessions, clock)
    # Not even the orders stamped with the mark (c3's): after a bulk import every order has
    # it, and a quiet shop would regroup the whole import every day.
    set_spent_behind_its_back(sessions, "c3")
    run_daily(sessions, clock)
    run_daily(sessions, clock)
    assert inputs(sessions)["c3"][2] == Decimal(999)


@pytest.fixture
def mariadb_sessions() -> Iterator[sessionmaker[Session]]:
    require_mariadb()
    url = create_mariadb_database()
    engine = create_engine_for(url)
    try:
        upgrade(engine)
        yield session_factory(engine)
    finally:
        engine.dispose()
        drop_mariadb_database(url)


def add_order_stamped(sessions: sessionmaker[Session], clock: FixedClock, n: int) -> None:
    """Customer `c<n>` and a paid order written at the clock's time, inputs not refreshed:
    what the daily pass is the safety net for."""
    with sessions.begin() as session:
        customer = Customer(external_id=f"c{n}", phone=f"+98912{n:07d}", locale="fa")
        session.add(customer)
        session.flush()
        session.add(
            Order(
                external_id=f"o{n}",
                customer_id=customer.id,
                total=Decimal(n),
                paid_at=clock.now() - timedelta(hours=3),
                created_at=clock.now(),
                updated_at=clock.now(),
            )
        )


def test_an_order_written_in_the_second_of_the_watermark_is_read_on_mariadb(
    mariadb_sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    # MariaDB keeps whole seconds: both orders are stamped 03:00:00 there, the second one
    # after the first pass has read the latest stamp.
    clock.advance(timedelta(milliseconds=200))
    add_order_stamped(mariadb_sessions, clock, 1)
    run_daily(mariadb_sessions, clock)
    clock.advance(timedelta(milliseconds=500))
    add_order_stamped(mariadb_sessions, clock, 2)
    run_daily(mariadb_sessions, clock)
    assert inputs(mariadb_sessions)["c2"][:3] == (1, MAIN, Decimal(2))


def a_request(sessions: sessionmaker[Session], k: int, now: datetime, **customer: Any) -> None:
    """A webhook's or the ingest API's order of new customer `n<k>`, paid an hour before
    `now`, loaded as a request loads it (`segment_map`: ranked with the request)."""
    record = {
        "external_id": f"new{k}",
        "customer_id": f"n{k}",
        "total": "5",
        "paid_at": (now - timedelta(hours=1)).isoformat(),
        "customer": {"external_id": f"n{k}", "phone": f"+98935{k:07d}", **customer},
    }
    with sessions.begin() as session:
        result = load_orders(
            session, [record], CustomerDefaults(currency=MAIN), now=now, segment_map=STANDARD
        )
    assert result.errors == []


def upgraded_shop(sessions: sessionmaker[Session], clock: FixedClock) -> None:
    """Twenty long-standing customers whose orders predate segments: no inputs, no mark."""
    for n in range(1, 21):
        add_order_stamped(sessions, clock, n)
    clock.advance(timedelta(days=5))


def moves(sessions: sessionmaker[Session]) -> list[tuple[str, str, str]]:
    with sessions() as session:
        rows = session.execute(
            select(Customer.external_id, SegmentChange.old, SegmentChange.new)
            .join(SegmentChange, SegmentChange.customer_id == Customer.id)
            .order_by(Customer.external_id)
        )
        return [(row[0], row[1], row[2]) for row in rows]


def marked(sessions: sessionmaker[Session]) -> bool:
    with sessions() as session:
        return session.get(SyncState, STATE) is not None


def owed_rows(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        owed = select(func.count()).where(SyncState.name.like(f"{OWED}%"))
        return session.scalar(owed) or 0


def test_a_request_before_the_first_pass_leaves_the_ranking_to_the_daemon(
    sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    """Regression: on a shop upgraded to segments, a webhook or ingest request that came
    before the daemon's first pass ran that pass itself (10-13 s at 1M customers), and the
    shop counted the delivery as failed and sent it again. It now refreshes its customer's
    inputs only; the daemon's pass places everybody, the new customer with its move from
    "none", as the request would have."""
    upgraded_shop(sessions, clock)
    a_request(sessions, 1, clock.now())
    assert not marked(sessions)  # no pass ran
    with sessions() as session:
        rows = session.execute(
            select(Customer.external_id, CustomerScore.orders, CustomerScore.scored_at).join(
                CustomerScore, CustomerScore.customer_id == Customer.id
            )
        ).all()
    assert [tuple(row) for row in rows] == [("n1", 1, None)]  # inputs, never ranked
    assert moves(sessions) == []

    clock.advance(timedelta(minutes=5))
    with sessions.begin() as session:  # the daemon's pass at start, or `run --once`
        first = daily(session, STANDARD, clock.now(), MAIN)
    assert (first.changed, first.placed) == (1, 20)
    assert moves(sessions) == [("n1", "none", "new")]  # a welcome rule's move


@pytest.mark.parametrize("next_pass", ["the daemon's", "a request's"])
def test_a_request_while_a_pass_holds_the_lock_leaves_its_customer_to_the_next_one(
    impatient_sessions: sessionmaker[Session], clock: FixedClock, next_pass: str
) -> None:
    """Regression: a request that came while a pass held the rescoring lock waited for the
    whole pass (at 1M customers, 10 s and more) before it could answer. It now writes no
    scores and leaves its customer owed; the next ranking, whoever runs it, places them with
    their move. Even when the request's order is stamped before the mark the pass read (its
    clock was read before another order's, committed first): the mark does not cover it."""
    sessions = impatient_sessions
    upgraded_shop(sessions, clock)
    run_daily(sessions, clock)  # the shop's first pass: from now on requests rank
    request_began = clock.now()
    clock.advance(timedelta(minutes=1))
    add_order_stamped(sessions, clock, 21)
    with sessions.begin() as holder:
        daily(holder, STANDARD, clock.now(), MAIN)  # holds the lock until its commit
        a_request(sessions, 1, request_began)  # on main: LockNotAvailable after 2 s
        with sessions.begin() as session:
            n1 = session.scalar(select(Customer.id).where(Customer.external_id == "n1"))
            assert session.get(CustomerScore, n1) is None
            # Stamped before c21's order, which the pass read as its mark.
            session.execute(
                update(Order).where(Order.customer_id == n1).values(updated_at=request_began)
            )
    assert owed_rows(sessions) == 1

    c21 = ("c21", "none", "new")  # placed by the pass that held the lock
    assert moves(sessions) == [c21]

    clock.advance(timedelta(minutes=5))
    if next_pass == "the daemon's":
        run_daily(sessions, clock)
        assert moves(sessions) == [c21, ("n1", "none", "new")]
    else:
        a_request(sessions, 2, clock.now())
        assert moves(sessions) == [c21, ("n1", "none", "new"), ("n2", "none", "new")]
    assert owed_rows(sessions) == 0


def test_two_requests_at_once_on_a_shop_without_a_first_pass_both_commit(
    sessions: sessionmaker[Session], clock: FixedClock, db_url: str, monkeypatch: Any
) -> None:
    """Two webhooks for new customers at the same moment on an upgraded shop: each refreshed
    its customer's inputs, then the first to rank ran the first pass, whose DROP INDEX waited
    for the other's row in `customer_scores` while the other waited for the pass's advisory
    lock. PostgreSQL killed one as a deadlock and its order was rolled back (a 500 to the
    shop). Neither ranks now, and the one that finds the lock taken writes no scores; the
    daemon's pass places both."""
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE): this race needs PostgreSQL")
    upgraded_shop(sessions, clock)
    now = clock.now()
    barrier = threading.Barrier(2)
    rank = loader.rank_for_request

    def together(session: Session, *args: Any) -> object:
        barrier.wait(timeout=30)
        return rank(session, *args)

    monkeypatch.setattr(loader, "rank_for_request", together)
    errors: list[str] = []

    def webhook(k: int) -> None:
        try:
            a_request(sessions, k, now)
        except DBAPIError as exc:
            errors.append(type(exc.orig).__name__)

    threads = [threading.Thread(target=webhook, args=(k,)) for k in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert moves(sessions) == [] and not marked(sessions)
    run_daily(sessions, clock)
    assert moves(sessions) == [("n1", "none", "new"), ("n2", "none", "new")]


def test_the_daemon_ranks_nothing_when_what_was_owed_was_settled_while_it_waited(
    sessions: sessionmaker[Session], clock: FixedClock, db_url: str
) -> None:
    """The daemon's `place_owed` saw an owed row, then waited for the lock held by a pass
    that settled that row: it must not rank the whole shop again for nothing (at 1M
    customers, seconds; at the daemon's start, where both tasks run at once, every time)."""
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE): this race needs PostgreSQL")
    upgraded_shop(sessions, clock)
    run_daily(sessions, clock)
    a_request_left_owed = SyncState(name=f"{OWED}x", cursor={"customers": [1]})
    with sessions.begin() as session:
        session.add(a_request_left_owed)
    results: list[object] = []

    def daemon_task() -> None:
        with sessions.begin() as session:
            results.append(place_owed(session, STANDARD, clock.now(), MAIN))

    with sessions.begin() as holder:
        daily(holder, STANDARD, clock.now(), MAIN)  # settles the row, holds the lock
        thread = threading.Thread(target=daemon_task)
        thread.start()
        waiting = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        deadline = time.monotonic() + 30
        with sessions() as probe:
            while not probe.scalar(waiting) and time.monotonic() < deadline:
                probe.rollback()
        assert thread.is_alive()  # waiting for the pass's lock
    thread.join(timeout=30)
    assert results == [None] and owed_rows(sessions) == 0


def test_a_request_leaves_a_backlog_of_owed_customers_to_the_daemon(
    sessions: sessionmaker[Session], clock: FixedClock, monkeypatch: Any
) -> None:
    """Regression: the request that ranked next refreshed every customer earlier requests
    left owed. A batch client's requests during a pass leave thousands (at 300k customers
    on PostgreSQL, 100 ingest batches of 1,000 left 85k): the webhook that took them on
    answered in 4 s, 2,000 batches in 18 s, and the shop sent it again. A request now takes
    on only a few; the rest waits for the daemon (`place_owed`, within a minute)."""
    monkeypatch.setattr(daily_module, "REQUEST_OWED_ROWS", 2)
    monkeypatch.setattr(daily_module, "REQUEST_OWED_CUSTOMERS", 3)
    upgraded_shop(sessions, clock)
    run_daily(sessions, clock)
    with sessions.begin() as session:
        ids = {row[0]: row[1] for row in session.execute(select(Customer.external_id, Customer.id))}
        owe(session, [ids["c1"], ids["c2"]], clock.now())
        owe(session, [ids["c3"], ids["c4"]], clock.now())  # 4 customers: a backlog
    set_spent_behind_its_back(sessions, "c1")  # what only a refresh of c1 corrects

    a_request(sessions, 1, clock.now())
    assert ("n1", "none", "new") in moves(sessions)  # the request ranked its own customer
    assert owed_rows(sessions) == 2 and inputs(sessions)["c1"][2] == Decimal(999)

    with sessions.begin() as session:  # the daemon's task
        place_owed(session, STANDARD, clock.now(), MAIN)
    assert owed_rows(sessions) == 0 and inputs(sessions)["c1"][2] == Decimal(1)


def test_a_request_still_takes_on_a_few_owed_customers(
    sessions: sessionmaker[Session], clock: FixedClock, monkeypatch: Any
) -> None:
    monkeypatch.setattr(daily_module, "REQUEST_OWED_ROWS", 2)
    monkeypatch.setattr(daily_module, "REQUEST_OWED_CUSTOMERS", 3)
    upgraded_shop(sessions, clock)
    run_daily(sessions, clock)
    with sessions.begin() as session:
        c1 = session.scalar(select(Customer.id).where(Customer.external_id == "c1"))
        owe(session, [c1], clock.now())
    set_spent_behind_its_back(sessions, "c1")
    a_request(sessions, 1, clock.now())
    assert owed_rows(sessions) == 0 and inputs(sessions)["c1"][2] == Decimal(1)
