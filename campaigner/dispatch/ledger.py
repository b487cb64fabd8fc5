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

from sqlalchemy import Table, bindparam, or_, select, update
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
    with sessions.begin() as session:
        ids = list(
            session.scalars(
                select(Message.id)
                .where(Message.status == MessageStatus.QUEUED, Message.scheduled_for <= now)
                .order_by(Message.priority.desc(), Message.due_at, Message.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if ids:
            session.execute(
                update(Message)
                .where(Message.id.in_(ids))
                .values(
                    status=MessageStatus.SENDING,
                    lease_until=lease_until,
                    gateway=gateway,
                    updated_at=now,
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
        groups[columns].append({"row_id": row["id"], **{k: row[k] for k in columns}})
    for columns, params in groups.items():
        statement = (
            update(table)
            .where(
                table.c.id == bindparam("row_id"),
                or_(*(table.c.status == status for status in IN_FLIGHT)),
            )
            .values({name: bindparam(name, type_=table.c[name].type) for name in columns})
        )
        session.execute(statement, params)
