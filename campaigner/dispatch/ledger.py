"""The dispatcher's writes to the ledger: claim, start, record, release, expire.

A row moves in two steps, so that a crash strands only what was really in flight:

- **claimed**: still `queued`, with this pass's `claim` token and `lease_until`. Nothing has
  gone out; if the dispatcher dies, the lease lapses and any dispatcher may claim it again,
  untouched (no attempt counted).
- **sending**: its own request is about to start. Only the claim holder can move a row
  there, in one statement for the requests that start together; if the dispatcher dies now,
  the lease lapses and the row becomes `unknown`, never `queued`: it may have reached the
  gateway.

Every write names the claim it acts for, so a dispatcher that was too slow (its lease lapsed
and another claimed the row) changes nothing. PostgreSQL claims with `FOR UPDATE SKIP
LOCKED`; SQLite serialises writers (the engine begins IMMEDIATE).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    Update,
    and_,
    any_,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, sessionmaker

from campaigner.db.models import Message, MessageStatus
from campaigner.masking import excerpt

MAX_ERROR_CHARS = 500
TABLE: Table = Message.__table__  # type: ignore[assignment]
_c = TABLE.c


def claim_due(
    sessions: sessionmaker[Session],
    now: datetime,
    limit: int,
    *,
    claim: str,
    lease_until: datetime,
) -> list[int]:
    """Hold up to `limit` due queued rows for this pass (they stay `queued`); their ids."""
    free = or_(_c.lease_until.is_(None), _c.lease_until < now)
    due = (
        select(_c.id)
        .where(_c.status == MessageStatus.QUEUED, _c.scheduled_for <= now, free)
        .order_by(_c.priority.desc(), _c.due_at, _c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    with sessions.begin() as session:
        return list(
            session.scalars(
                update(TABLE)
                .where(_c.id.in_(due.scalar_subquery()))
                .values(claim=claim, lease_until=lease_until, updated_at=now)
                .returning(_c.id)
            )
        )


def start_sending(
    session: Session,
    ids: Collection[int],
    now: datetime,
    *,
    claim: str,
    gateway: str,
    lease_until: datetime,
) -> set[int]:
    """Mark the rows whose requests start now `sending`; returns those still ours to send.

    A row is ours while it is queued under our claim and the lease has not lapsed: past
    that, another dispatcher may claim it at any moment, so we must not send it.
    """
    if not ids:
        return set()
    params = {
        "ids": list(ids),
        "mine": claim,
        "now": now,
        "gateway": gateway,
        "new_lease": lease_until,
    }
    return set(session.connection().scalars(_START_SENDING, params))


# Built once: the sender runs it for every group of requests it starts.
_START_SENDING = (
    update(TABLE)
    .where(
        _c.id.in_(bindparam("ids", expanding=True)),
        _c.claim == bindparam("mine"),
        _c.status == MessageStatus.QUEUED,
        _c.lease_until >= bindparam("now"),
    )
    .values(
        status=MessageStatus.SENDING,
        gateway=bindparam("gateway"),
        lease_until=bindparam("new_lease"),
        updated_at=bindparam("now"),
    )
    .returning(_c.id)
)


def write_claimed(session: Session, claim: str, rows: Sequence[dict[str, Any]]) -> None:
    """Policy verdicts and rendered texts for rows claimed but not started."""
    _write(session, rows, "held", claim)


def write_results(session: Session, claim: str, rows: Sequence[dict[str, Any]]) -> None:
    """What became of rows whose requests this claim started.

    A late answer still lands on a row that turned `unknown` meanwhile (it is the truth),
    but never on one that has since been settled, re-queued or claimed again.
    """
    _write(session, rows, "in_flight", claim)


def write_unknown(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Settle `unknown` rows (reconciliation, or by hand) unless something settled them first."""
    _write(session, rows, "unknown", None)


def release(
    sessions: sessionmaker[Session], claim: str, ids: Collection[int], now: datetime
) -> int:
    """Hand claimed rows that never started back to the queue at once; returns how many."""
    if not ids:
        return 0
    with sessions.begin() as session:
        result = session.execute(
            update(TABLE)
            .where(_c.id.in_(list(ids)), _held(claim))
            .values(claim=None, lease_until=None, updated_at=now)
        )
    return int(getattr(result, "rowcount", 0) or 0)


def expire_leases(sessions: sessionmaker[Session], now: datetime) -> int:
    """Rows whose request started under a lease that lapsed become `unknown`; how many.

    Claimed rows that never started need nothing: they are `queued`, and a lapsed lease
    makes them claimable again. The rows are locked in id order first, as the report
    applier locks them: an UPDATE alone locks them in its scan's order, and on PostgreSQL
    the two deadlocked (tests/dispatch/test_report_race.py).
    """
    lapsed = [_c.status == MessageStatus.SENDING, _c.lease_until < now]
    in_order = select(_c.id).where(*lapsed).order_by(_c.id).with_for_update()
    with sessions.begin() as session:
        result = session.execute(
            update(TABLE)
            .where(_c.id.in_(in_order), *lapsed)
            .values(status=MessageStatus.UNKNOWN, reason="lease_expired", updated_at=now)
        )
    return int(getattr(result, "rowcount", 0) or 0)


# -- the row changes the dispatcher writes -------------------------------------------------


def released(row_id: int, now: datetime) -> dict[str, Any]:
    """Back in the queue as if never claimed (a claimed row, or a request refused whole)."""
    return {
        "id": row_id,
        "status": MessageStatus.QUEUED,
        "claim": None,
        "lease_until": None,
        "gateway": None,
        "updated_at": now,
    }


def final(row_id: int, status: MessageStatus, reason: str | None, now: datetime) -> dict[str, Any]:
    return {
        "id": row_id,
        "status": status,
        "reason": reason,
        "claim": None,
        "lease_until": None,
        "updated_at": now,
    }


def failed(row_id: int, reason: str, error: str, now: datetime) -> dict[str, Any]:
    row = final(row_id, MessageStatus.FAILED, reason[:64], now)
    return {**row, "last_error": excerpt(error, MAX_ERROR_CHARS)}


def unknown(row_id: int, reason: str, error: str, now: datetime) -> dict[str, Any]:
    row = final(row_id, MessageStatus.UNKNOWN, reason, now)
    return {**row, "last_error": excerpt(error, MAX_ERROR_CHARS)}


# -- writing ------------------------------------------------------------------------------


def _held(claim: str) -> ColumnElement[bool]:
    """Claimed by `claim` and not started."""
    return and_(_c.claim == claim, _c.status == MessageStatus.QUEUED)


# Which rows a write may still change, by the claim given as `mine`.
_CONDITIONS: dict[str, ColumnElement[bool]] = {
    "held": and_(_c.claim == bindparam("mine"), _c.status == MessageStatus.QUEUED),
    "in_flight": and_(
        _c.claim == bindparam("mine"),
        or_(_c.status == MessageStatus.SENDING, _c.status == MessageStatus.UNKNOWN),
    ),
    "unknown": _c.status == MessageStatus.UNKNOWN,
}


def _write(
    session: Session, rows: Sequence[dict[str, Any]], condition: str, claim: str | None
) -> None:
    """Update ledger rows by id, each dict holding `id` and the columns to set, where
    `condition` still holds for `claim`."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        columns = tuple(sorted(key for key in row if key != "id"))
        groups[columns].append(row)
    # The session's connection, not `session.execute`: these are plain table UPDATEs, and
    # the ORM's execution machinery around each cost more than the statement.
    connection = session.connection()
    by_arrays = connection.dialect.name == "postgresql"
    mine = {} if claim is None else {"mine": claim}
    if by_arrays and rows:
        # Lock the rows in id order first, as the delivery-report applier does: an UPDATE
        # … FROM unnest locks them in whatever order the plan visits them, and crossed with
        # the applier's ordered locks that was a deadlock (one of the two transactions lost).
        connection.execute(_LOCK_IN_ORDER, {"lock_ids": sorted({row["id"] for row in rows})})
    for columns, group in groups.items():
        statement = _statement(condition, columns, by_arrays)
        if by_arrays:
            arrays = {f"given_{name}": [row[name] for row in group] for name in ("id", *columns)}
            connection.execute(statement, {**arrays, **mine})
            continue
        connection.execute(
            statement,
            [{"row_id": row["id"], **mine, **{k: row[k] for k in columns}} for row in group],
        )


_LOCK_IN_ORDER = (
    select(_c.id)
    .where(_c.id == any_(bindparam("lock_ids", type_=ARRAY(_c.id.type))))
    .order_by(_c.id)
    .with_for_update()
)


@cache
def _statement(condition: str, columns: tuple[str, ...], by_arrays: bool) -> Update:
    """The UPDATE for one shape of rows, built once: the sender writes a few rows at a
    time, and building the statement cost more than running it."""
    if by_arrays:
        return _update_from_arrays(columns).where(_CONDITIONS[condition])
    return (
        update(TABLE)
        .where(_c.id == bindparam("row_id"), _CONDITIONS[condition])
        .values({name: bindparam(name, type_=_c[name].type) for name in columns})
    )


def _update_from_arrays(columns: tuple[str, ...]) -> Update:
    """One UPDATE … FROM unnest(one array per column) for a whole group of rows.

    PostgreSQL runs a single statement of fixed size whatever the number of rows, where an
    executemany runs one UPDATE per row and a VALUES list makes a statement as long as the
    batch for the driver and the server to parse.
    """
    names = ("id", *columns)
    arrays = [bindparam(f"given_{name}", type_=ARRAY(_c[name].type)) for name in names]
    given = func.unnest(*arrays).table_valued(*names).render_derived(name="given")
    return (
        update(TABLE).where(_c.id == given.c.id).values({name: given.c[name] for name in columns})
    )
