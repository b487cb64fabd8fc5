"""The dispatcher's writes to the ledger: claim under a lease, expire leases, record outcomes.

Claiming is one short transaction: PostgreSQL skips rows another dispatcher holds
(`FOR UPDATE SKIP LOCKED`), SQLite serialises writers (the engine begins IMMEDIATE).
A claimed row is `sending` with `lease_until`; if its dispatcher dies, the lease runs out
and the row becomes `unknown`, never `queued`: it may already have reached the gateway.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, Update, bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, sessionmaker

from campaigner.db.models import Message, MessageStatus

IN_FLIGHT = (MessageStatus.SENDING, MessageStatus.UNKNOWN)


def claim_due(
    sessions: sessionmaker[Session],
    now: datetime,
    limit: int,
    *,
    gateway: str,
    lease_until: datetime,
) -> list[int]:
    """Mark up to `limit` due queued rows `sending` for this dispatcher; returns their ids."""
    table: Table = Message.__table__  # type: ignore[assignment]
    due = (
        select(table.c.id)
        .where(table.c.status == MessageStatus.QUEUED, table.c.scheduled_for <= now)
        .order_by(table.c.priority.desc(), table.c.due_at, table.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    with sessions.begin() as session:
        ids = list(
            session.scalars(
                update(table)
                .where(table.c.id.in_(due.scalar_subquery()))
                .values(
                    status=MessageStatus.SENDING,
                    lease_until=lease_until,
                    gateway=gateway,
                    updated_at=now,
                )
                .returning(table.c.id)
            )
        )
    return ids


def expire_leases(sessions: sessionmaker[Session], now: datetime) -> int:
    """Rows whose dispatcher vanished mid-send become `unknown`; returns how many."""
    with sessions.begin() as session:
        result = session.execute(
            update(Message)
            .where(Message.status == MessageStatus.SENDING, Message.lease_until < now)
            .values(status=MessageStatus.UNKNOWN, reason="lease_expired", updated_at=now)
        )
    return int(getattr(result, "rowcount", 0) or 0)


def write_rows(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Update ledger rows by id, each dict holding `id` and the columns to set.

    Only rows still `sending` or `unknown` change, so a late answer never overwrites a row
    that another dispatcher has since re-queued and claimed.
    """
    table: Table = Message.__table__  # type: ignore[assignment]
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        columns = tuple(sorted(key for key in row if key != "id"))
        groups[columns].append(row)
    in_flight = or_(*(table.c.status == status for status in IN_FLIGHT))
    by_arrays = session.get_bind().dialect.name == "postgresql"
    for columns, group in groups.items():
        if by_arrays:
            session.execute(_update_from_arrays(table, columns, group).where(in_flight))
            continue
        statement = (
            update(table)
            .where(table.c.id == bindparam("row_id"), in_flight)
            .values({name: bindparam(name, type_=table.c[name].type) for name in columns})
        )
        session.execute(
            statement, [{"row_id": row["id"], **{k: row[k] for k in columns}} for row in group]
        )


def _update_from_arrays(
    table: Table, columns: tuple[str, ...], rows: list[dict[str, Any]]
) -> Update:
    """One UPDATE … FROM unnest(one array per column) for a whole group of rows.

    PostgreSQL runs a single statement of fixed size whatever the number of rows, where an
    executemany runs one UPDATE per row and a VALUES list makes a statement as long as the
    batch for the driver and the server to parse.
    """
    names = ("id", *columns)
    arrays = [
        bindparam(f"given_{name}", [row[name] for row in rows], type_=ARRAY(table.c[name].type))
        for name in names
    ]
    given = func.unnest(*arrays).table_valued(*names).render_derived(name="given")
    return (
        update(table)
        .where(table.c.id == given.c.id)
        .values({name: given.c[name] for name in columns})
    )
