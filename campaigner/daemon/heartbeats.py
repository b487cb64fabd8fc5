"""What each running daemon says of itself every few seconds, kept in the database so that
`campaigner status` and the console can show daemons on other machines."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigner.db.models import SyncState

HEARTBEAT_PREFIX = "daemon:"
HEARTBEAT_INTERVAL = 15.0


def daemon_heartbeats(session: Session) -> list[dict[str, Any]]:
    """What each running daemon said last."""
    rows = session.scalars(
        select(SyncState)
        .where(SyncState.name.like(f"{HEARTBEAT_PREFIX}%"))
        .order_by(SyncState.name)
    )
    return [dict(row.cursor) for row in rows]
