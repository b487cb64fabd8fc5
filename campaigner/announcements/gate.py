"""The confirmation gate: an announcement is queued only once approved, and once per
version of its audience.

Approval is `campaigner announce RULE --confirm` (recorded with who and when) or
`approved = true` in the rule file. The whole audience is then queued in one INSERT …
SELECT, each row waiting for its own due time, so that withdrawing the rule can cancel what
has not gone out. The audience is queued again only when the rule or its customers file
changes; the ledger's key keeps that from reaching anyone twice.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from campaigner.db.models import Announcement, Message, MessageStatus
from campaigner.errors import CampaignerError
from campaigner.rules.models import AnnouncementRule

# How far ahead an approved announcement is queued: all of it, however far its `at`.
HORIZON = timedelta(days=36_600)
FILE_APPROVAL = "rule file (approved = true)"
NOT_STARTED = (MessageStatus.QUEUED, MessageStatus.HELD_OUT, MessageStatus.CANCELLED)
# SQLite's page cache while an audience is queued: a million ledger rows update six
# B-trees, and SQLite's default 2 MB makes that twice as slow (docs/benchmarks.md).
QUEUE_CACHE_KIB = 64 * 1024


def record(session: Session, rule: str, key: str) -> Announcement | None:
    return session.scalars(
        select(Announcement).where(Announcement.rule == rule, Announcement.occurrence_key == key)
    ).first()


def is_approved(session: Session, rule: AnnouncementRule) -> bool:
    return rule.approved or is_approved_record(record(session, rule.name, rule.occurrence_key))


def is_approved_record(found: Announcement | None) -> bool:
    return found is not None and found.approved_at is not None


def confirm(session: Session, rule: AnnouncementRule, by: str, now: datetime) -> Announcement:
    """Record the approval of `rule` as it is now (its `at`); an earlier approval stands."""
    found = record(session, rule.name, rule.occurrence_key)
    if found is None:
        found = Announcement(rule=rule.name, occurrence_key=rule.occurrence_key, created_at=now)
        session.add(found)
    if found.approved_at is None:
        found.approved_by, found.approved_at = by, now
    session.flush()
    return found


def fingerprint(rule: AnnouncementRule) -> str:
    ids, phones = rule.listed
    digest = hashlib.sha256(rule.model_dump_json().encode())
    for value in (*sorted(ids), "\0", *sorted(phones)):
        digest.update(value.encode() + b"\n")
    return digest.hexdigest()


def to_queue(session: Session, rule: AnnouncementRule) -> bool:
    """Whether planning should queue the audience now: approved, not withdrawn, and not
    queued yet in this version. Refuses (raises) an `at` moved after sending started."""
    moved = moved_after_start(session, rule)
    if moved:
        raise CampaignerError(f"at: {moved}")
    if not is_approved(session, rule):
        return False
    found = record(session, rule.name, rule.occurrence_key)
    if found is None:
        return True
    return found.withdrawn_at is None and found.queued_fingerprint != fingerprint(rule)


def queued(session: Session, rule: AnnouncementRule, now: datetime) -> None:
    found = record(session, rule.name, rule.occurrence_key)
    if found is None:
        found = Announcement(rule=rule.name, occurrence_key=rule.occurrence_key, created_at=now)
        session.add(found)
    if found.approved_at is None:
        found.approved_by, found.approved_at = FILE_APPROVAL, now
    found.queued_at = found.queued_at or now
    found.queued_fingerprint = fingerprint(rule)
    session.flush()


def started(session: Session, rule: str, key: str) -> bool:
    """Whether anything of this announcement went out or was settled (sent, skipped, …)."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    Message.rule == rule,
                    Message.occurrence_key == key,
                    Message.status.not_in([status.value for status in NOT_STARTED]),
                )
            )
        )
    )


def moved_after_start(session: Session, rule: AnnouncementRule) -> str | None:
    """Why `rule` may not run as written: its `at` differs from an occurrence of the same
    announcement whose sending started (a second message to everyone); None when fine."""
    others = session.scalars(
        select(Announcement.occurrence_key).where(
            Announcement.rule == rule.name,
            Announcement.occurrence_key != rule.occurrence_key,
            Announcement.queued_at.is_not(None),
        )
    )
    for key in others:
        if started(session, rule.name, key):
            return (
                f"changed to {rule.occurrence_key} after sending started at {key}: keep "
                f'at = "{key}", or copy the file under a new name for a new announcement'
            )
    return None
