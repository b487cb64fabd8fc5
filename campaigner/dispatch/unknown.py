"""Settling `unknown` rows by hand, for gateways that cannot look a message up (Kannel).

An `unknown` row's request was in flight when its answer was lost. Only the operator can
tell, from the gateway's or the SMSC's own logs, whether it went out:

- `sent`: it went out. The row is `sent`, as of when it became unknown (caps and reports
  count it then).
- `not_sent`: it did not go out and must not: `failed`, reason `not_sent`.
- `requeue`: it did not go out; send it. Back to `queued` now (reason `requeued`); the
  sending policy (window, caps, opt-out, expiry) is checked again when it goes.

Each settled row records who settled it and when. Only rows still `unknown` change, so a
late answer or a reconciliation that settled a row first is never overwritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.db.models import Message, MessageStatus
from campaigner.dispatch.ledger import final, released, write_unknown


class Resolution(StrEnum):
    SENT = "sent"
    NOT_SENT = "not_sent"
    REQUEUE = "requeue"


@dataclass(frozen=True)
class Selection:
    """Which unknown rows: these ids, or those of a rule and/or unknown for a while."""

    ids: Sequence[int] = ()
    rule: str | None = None
    older_than: timedelta | None = None

    def query(self, now: datetime) -> Select[Message]:
        query = select(Message).where(Message.status == MessageStatus.UNKNOWN)
        if self.ids:
            query = query.where(Message.id.in_(self.ids))
        if self.rule is not None:
            query = query.where(Message.rule == self.rule)
        if self.older_than is not None:
            query = query.where(Message.updated_at <= now - self.older_than)
        return query.order_by(Message.updated_at, Message.id)


@dataclass
class Settled:
    resolved: list[int] = field(default_factory=list)
    # Ids that were given but are not `unknown` (any more), with what they are.
    left_alone: dict[int, str] = field(default_factory=dict)


def unknown_messages(
    session: Session, selection: Selection, now: datetime, *, limit: int | None = None
) -> Sequence[Message]:
    """The selected unknown rows, longest unknown first."""
    return session.scalars(selection.query(now).limit(limit)).all()


def resolve_unknown(
    sessions: sessionmaker[Session],
    selection: Selection,
    resolution: Resolution,
    *,
    by: str,
    now: datetime,
) -> Settled:
    settled = Settled()
    with sessions.begin() as session:
        rows = session.scalars(selection.query(now).with_for_update()).all()
        write_unknown(session, [_settle(row, resolution, by, now) for row in rows])
        settled.resolved = [row.id for row in rows]
        missing = set(selection.ids) - set(settled.resolved)
        if missing:
            found = session.execute(
                select(Message.id, Message.status).where(Message.id.in_(missing))
            )
            statuses = {row_id: status for row_id, status in found}
            settled.left_alone = {i: statuses.get(i, "no such message") for i in sorted(missing)}
    return settled


def _settle(row: Message, resolution: Resolution, by: str, now: datetime) -> dict[str, Any]:
    who = {"resolved_by": by[:128], "resolved_at": now}
    if resolution == Resolution.SENT:
        return {**final(row.id, MessageStatus.SENT, None, now), "sent_at": row.updated_at, **who}
    if resolution == Resolution.NOT_SENT:
        return {**final(row.id, MessageStatus.FAILED, "not_sent", now), **who}
    return {**released(row.id, now), "reason": "requeued", "scheduled_for": now, **who}
