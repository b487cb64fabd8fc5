"""The daemon's daily segments pass: inputs of the customers whose orders changed since the
last pass, then the shop-wide ranking.

Every loader that writes orders (CSV import, sources sync, ingest API, shop webhooks, guest
merges) already refreshes the inputs of the customers it touched and rescores, so
regrouping every order of the shop each day would recompute inputs that are already right
(at 1M customers / 3M orders, 15 s of CPU on SQLite). The daily pass is the safety net for
writes that did not: it refreshes the customers of the orders whose `updated_at` is after
the latest one the previous pass saw (an index range on `orders.updated_at`), and
everybody when there was no previous pass or the shop's main currency changed (inputs of
customers who paid in several currencies depend on it). It also applies a map changed in
config, since the ranking always covers the whole shop.

A loader serving a request (a shop webhook, the ingest API) never waits for a pass
(`rank_for_request`): before the shop's first pass it leaves the ranking to the daemon, and
while another transaction holds the rescoring lock it leaves its customers owed to the next
ranking, whoever runs it; the daemon places what is owed within a planning interval
(`place_owed`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from sqlalchemy import Engine, delete, func, select, text
from sqlalchemy.orm import Session

from campaigner.db.models import Order, SyncState
from campaigner.segments.passes import recompute
from campaigner.segments.rfm_map import SegmentMap
from campaigner.segments.scoring import (
    INPUTS_CHUNK,
    RescoreResult,
    lock,
    refresh_inputs,
    rescore,
    try_lock,
)

STATE = "segments:daily"
# Customers whose inputs a request left to the next ranking: one `sync_state` row per
# request, under a name of its own, so that writing it never waits for another transaction.
OWED = "segments:owed:"
# A request takes on what earlier requests left owed only while it is this small (one
# refresh statement): a backlog, a batch client's thousands of customers left during a
# pass, is the daemon's (`place_owed`, within a minute). At 300k customers on PostgreSQL,
# the webhook that took on 85k answered in 4 s, and the shop sent it again.
REQUEST_OWED_ROWS = 100
REQUEST_OWED_CUSTOMERS = INPUTS_CHUNK


def daily(
    session: Session, segment_map: SegmentMap, now: datetime, main_currency: str
) -> RescoreResult:
    """Refresh what may be stale and what requests left owed, rank, and remember how far
    the orders were read."""
    lock(session)  # before reading what is owed: a request that ranks meanwhile settles it
    touched, mark = stale(session, main_currency)
    names, owed_customers = owed(session)
    if touched is not None:
        touched = sorted(set(touched) | set(owed_customers))
    result = recompute(session, segment_map, now, main_currency, touched)
    settle(session, names)
    remember(session, {**mark, "ran_at": now.isoformat()})
    return result


def due(session: Session, now: datetime, interval: timedelta) -> bool:
    """Whether the daily pass is due: never run, or last run `interval` ago or more (by
    the clock of the pass, kept in its mark). For `campaigner run --once`, which cron
    starts every few minutes and which has no timer of its own."""
    state = session.get(SyncState, STATE)
    ran = _seen(state.cursor.get("ran_at")) if state else None
    return ran is None or now - ran >= interval


def rescore_loaded(
    session: Session, segment_map: SegmentMap, now: datetime, main_currency: str
) -> RescoreResult:
    """The ranking after a loader nobody's request waits on (CLI import, sync) wrote orders
    and refreshed its customers' inputs; it refreshes the owed ones too (`rank_for_request`).

    Until the shop's first pass over everybody (no mark yet), `customer_scores` may lack every
    customer whose orders predate segments: ranked among the few already scored, a customer
    who had just bought was placed in "lost", recorded as a move, and a win-back rule
    messaged them. So such a loader runs that pass itself, once (an import shows its
    progress; on a shop that starts empty it costs nothing)."""
    if session.get(SyncState, STATE) is None:
        return daily(session, segment_map, now, main_currency)
    return _rank(session, segment_map, now, main_currency, [])


def rank_for_request(
    session: Session,
    customer_ids: Iterable[int],
    segment_map: SegmentMap,
    now: datetime,
    main_currency: str,
) -> RescoreResult | None:
    """The inputs of the customers a request loaded (a shop webhook, the ingest API), then
    the ranking, without making the request wait for a pass: a shop counts a delivery
    answered late as failed and sends it again (Shopify waits 5 s), and on a large shop a
    first pass takes 10 s or more.

    - Before the shop's first pass (no mark) the inputs only: the daemon's pass at start,
      or `run --once`, ranks everybody, and places these customers as the request would
      have (a first paid order within ARRIVAL_WINDOW is a move from "none").
    - While another transaction holds the rescoring lock (PostgreSQL: a pass, an import,
      another request ranking), nothing is written to `customer_scores`, which that pass
      may hold until it commits: the customers are owed (`owe`), and the next ranking, a
      request's or the daemon's, refreshes their inputs first.

    Returns None when the ranking was left to another pass."""
    ids = sorted(set(customer_ids))
    if not try_lock(session):
        owe(session, ids, now)
        return None
    if session.get(SyncState, STATE) is None:
        refresh_inputs(session, ids, main_currency)
        return None
    return _rank(session, segment_map, now, main_currency, ids, backlog=False)


def place_owed(
    session: Session, segment_map: SegmentMap, now: datetime, main_currency: str
) -> RescoreResult | None:
    """The ranking of what requests left owed, if they left any (the daemon's: it may wait
    for the lock). Without it a customer owed on a quiet shop waited for the next daily
    pass: a welcome a day late, and none with a `daily_interval` over ARRIVAL_WINDOW (a
    first placement that late is not a move). None when nothing was owed, or before the
    shop's first pass, which places everybody."""
    waiting = select(SyncState.name).where(SyncState.name.like(f"{OWED}%")).limit(1)
    if session.scalar(waiting) is None:  # no lock taken: requests keep ranking meanwhile
        return None
    lock(session)  # then again: a pass or request may have settled it while this waited
    if session.get(SyncState, STATE) is None or session.scalar(waiting) is None:
        return None
    return _rank(session, segment_map, now, main_currency, [])


def _rank(
    session: Session,
    segment_map: SegmentMap,
    now: datetime,
    main_currency: str,
    customer_ids: list[int],
    *,
    backlog: bool = True,
) -> RescoreResult:
    """Inputs of these customers and of the owed ones, then the ranking; what was owed is
    settled with it. Without `backlog` (a request), what is owed only if it is small."""
    lock(session)  # before reading what is owed: another ranking may be settling it
    if backlog:
        names, owed_customers = owed(session)
    else:
        names, owed_customers = owed(session, REQUEST_OWED_ROWS + 1)
        if len(names) > REQUEST_OWED_ROWS or len(owed_customers) > REQUEST_OWED_CUSTOMERS:
            names, owed_customers = [], []
    refresh_inputs(session, sorted(set(customer_ids) | set(owed_customers)), main_currency)
    result = rescore(session, segment_map, now)
    settle(session, names)
    return result


def owe(session: Session, customer_ids: list[int], now: datetime) -> None:
    """Leave these customers' inputs and ranking to the next ranking."""
    if customer_ids:
        name = f"{OWED}{uuid4().hex}"
        session.add(SyncState(name=name, cursor={"customers": customer_ids}, updated_at=now))


def owed(session: Session, limit: int | None = None) -> tuple[list[str], list[int]]:
    """The rows owed to this ranking (to settle once it has run), at most `limit` of them,
    and their customers."""
    query = select(SyncState.name, SyncState.cursor).where(SyncState.name.like(f"{OWED}%"))
    rows = session.execute(query if limit is None else query.limit(limit)).all()
    customers = {int(id_) for _, cursor in rows for id_ in cursor.get("customers", [])}
    return [name for name, _ in rows], sorted(customers)


def settle(session: Session, names: list[str]) -> None:
    """Forget what was owed once a ranking has refreshed it: only the rows it read, so
    that a request's committed since is owed to the next one."""
    if names:
        session.execute(delete(SyncState).where(SyncState.name.in_(names)))


def tidy(engine: Engine) -> None:
    """PostgreSQL: VACUUM (ANALYZE) the scores after the daily pass, outside its transaction.

    The thresholds are walks along indexes on `customer_scores`; PostgreSQL walks an index
    without reading the table (an index-only scan) only for pages its visibility map marks
    all-visible, and otherwise sorts the payers instead (at 1M, seconds per threshold).
    Autovacuum gets there in its own time. At 1M customers this costs 1.5 s of wall time
    after a first pass (filled afresh: no dead rows) and 0.6 s after a daily pass that moved
    little; ANALYZE alone (0.2 s) leaves the visibility map unset, and every walk then reads
    the table too (docs/benchmarks.md).
    """
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM (ANALYZE) customer_scores"))


def stale(session: Session, main_currency: str) -> tuple[list[int] | None, dict[str, Any]]:
    """The customers whose inputs the pass refreshes (None: everybody), and the mark to
    remember once it has."""
    state = session.get(SyncState, STATE)
    cursor: dict[str, Any] = dict(state.cursor) if state else {}
    # Read before refreshing: an order committed after this read has a later stamp, or the
    # same one where stamps are coarse (MariaDB keeps whole seconds), and is read next time.
    # (One committed later with an earlier stamp was written by a loader, which refreshed
    # its customer itself, or by a request, which left its customer owed: `owe`.)
    latest = session.scalar(select(func.max(Order.updated_at)))
    mark = {"currency": main_currency, "orders_updated_at": _stamp(latest)}
    since = _seen(cursor.get("orders_updated_at"))
    if since is None or cursor.get("currency") != main_currency:
        return None, mark
    # MariaDB keeps whole seconds: an order written in the mark's second after it was read
    # has the mark's stamp, so there the orders stamped with it are read again (refreshing is
    # idempotent). Not elsewhere: after a bulk import every order of it has the mark, and a
    # quiet shop would regroup the whole import every day (at 1M/3M on PostgreSQL, 37 s).
    coarse = session.get_bind().dialect.name in {"mysql", "mariadb"}
    after = Order.updated_at >= since if coarse else Order.updated_at > since
    # Deduplicated here: with DISTINCT, SQLite walks an index on customer_id, every order.
    changed = select(Order.customer_id).where(after)
    return sorted(set(session.scalars(changed))), mark


def remember(session: Session, mark: dict[str, Any]) -> None:
    state = session.get(SyncState, STATE)
    if state is None:
        session.add(SyncState(name=STATE, cursor=mark))
    else:
        state.cursor = mark


def _stamp(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _seen(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None
