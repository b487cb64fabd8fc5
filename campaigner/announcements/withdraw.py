"""Withdrawing an announcement: its rule disabled, deleted or moved to another `at` before
everything went out cancels what is still queued.

A row another dispatcher has claimed (its lease still running) or started sending is left
alone; one the cancel reached is `cancelled` and can never be claimed, since claims and
starts take only `queued` rows. Runs on every planning pass, so a row handed back to the
queue after the first cancel is cancelled on the next.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, or_, select, update
from sqlalchemy.orm import Session

from campaigner.db.models import Announcement, Message, MessageStatus
from campaigner.rules.models import AnnouncementRule, Rule

REASON = "rule_withdrawn"
# How long after its withdrawal an announcement is still looked at: rows a dispatcher held
# then are sent or handed back within their lease (minutes), and cancelled by a later pass.
# After that, nothing of it can be queued, and its (maybe million) rows are left alone.
SETTLE = timedelta(hours=1)
messages = cast(Table, Message.__table__)


def withdraw(
    session: Session, live: Iterable[Rule], now: datetime, broken: Collection[str] = ()
) -> int:
    """Cancel the queued rows of every queued announcement not among the `live` (enabled)
    rules as it was queued; how many were cancelled. A rule whose file is `broken` (a typo
    while no good version of it is loaded, as after a restart) is not withdrawn: it is
    fixed, not deleted."""
    running = {
        (rule.name, rule.occurrence_key) for rule in live if isinstance(rule, AnnouncementRule)
    }
    cancelled = 0
    recent = or_(Announcement.withdrawn_at.is_(None), Announcement.withdrawn_at > now - SETTLE)
    query = select(Announcement).where(Announcement.queued_at.is_not(None), recent)
    for found in session.scalars(query):
        if (found.rule, found.occurrence_key) in running or found.rule in broken:
            continue
        if found.withdrawn_at is None:
            found.withdrawn_at = now
        cancelled += cancel(session, found.rule, found.occurrence_key, now)
    return cancelled


def cancel(session: Session, rule: str, key: str, now: datetime) -> int:
    c = messages.c
    result = session.execute(
        update(messages)
        .where(
            c.rule == rule,
            c.occurrence_key == key,
            c.status == MessageStatus.QUEUED,
            or_(c.lease_until.is_(None), c.lease_until < now),
        )
        .values(
            status=MessageStatus.CANCELLED,
            reason=REASON,
            claim=None,
            lease_until=None,
            updated_at=now,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
