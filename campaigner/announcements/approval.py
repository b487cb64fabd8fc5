"""Looking at an announcement before it goes, and approving it: the same steps for
`campaigner announce` and the console's Announcements screen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from campaigner.announcements import gate
from campaigner.announcements.estimate import Estimate, estimate
from campaigner.config import Settings
from campaigner.errors import CampaignerError
from campaigner.preview import load_rule
from campaigner.rulebook import check_rules
from campaigner.rules.models import AnnouncementRule


@dataclass
class Review:
    rule: AnnouncementRule
    estimate: Estimate

    @property
    def approved(self) -> bool:
        return self.rule.approved or gate.is_approved_record(self.estimate.record)

    @property
    def withdrawn(self) -> bool:
        record = self.estimate.record
        return record is not None and record.withdrawn_at is not None


def review(settings: Settings, sessions: sessionmaker[Session], name: str, now: datetime) -> Review:
    """The announcement `name` as it would be queued now; refused when it is no
    announcement or its `at` moved after sending started."""
    rule = load_rule(settings, name)
    if not isinstance(rule, AnnouncementRule):
        raise CampaignerError(f"rule {name!r} is a {rule.trigger} rule, not an announcement")
    return _review(settings, sessions, rule, now)


def pending(settings: Settings, sessions: sessionmaker[Session], now: datetime) -> list[Review]:
    """Every enabled announcement not yet approved nor withdrawn, soonest first."""
    found = []
    for rule in check_rules(settings).rules.values():
        if isinstance(rule, AnnouncementRule) and rule.enabled:
            checked = _review(settings, sessions, rule, now)
            if not checked.approved and not checked.withdrawn:
                found.append(checked)
    return sorted(found, key=lambda item: (item.estimate.first_due or now, item.rule.name))


def approve(
    settings: Settings, sessions: sessionmaker[Session], name: str, by: str, now: datetime
) -> Review:
    """Record `by` as approving `name` now (an earlier approval stands)."""
    checked = review(settings, sessions, name, now)
    if checked.withdrawn:
        raise CampaignerError(f"rule {name!r} was withdrawn; copy it under a new name")
    if checked.estimate.total == 0:
        raise CampaignerError(f"rule {name!r}: nobody to send to; nothing approved")
    with sessions.begin() as session:
        checked.estimate.record = gate.confirm(session, checked.rule, by, now)
        session.expunge(checked.estimate.record)
    return checked


def _review(
    settings: Settings, sessions: sessionmaker[Session], rule: AnnouncementRule, now: datetime
) -> Review:
    with sessions() as session:
        moved = gate.moved_after_start(session, rule)
    if moved:
        raise CampaignerError(f"rule {rule.name!r}: at: {moved}")
    return Review(rule, estimate(settings, sessions, rule, now))
