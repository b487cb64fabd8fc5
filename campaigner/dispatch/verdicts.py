"""The sending policy asked again for each claimed row, at the moment it would go out.

Consent, opt-out, expiry, window, quiet days and caps are checked here rather than at
planning time, because the answers change. Caps count what was sent in the last week and
what other dispatchers hold right now (claimed or sending) with higher precedence, so two
dispatchers never both take a phone's last slot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from campaigner.db.models import Customer, Message, MessageStatus, OptOut
from campaigner.dispatch.ledger import final, released
from campaigner.dispatch.report import DispatchReport
from campaigner.policy import RulePolicy, SendingPolicy

SENT_STATUSES = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.UNDELIVERED)

Precedence = tuple[int, datetime, int]


def precedence(message: Message) -> Precedence:
    """Higher priority first, then the older due time (then the older row)."""
    return (-message.priority, message.due_at, message.id)


@dataclass(frozen=True)
class _Rival:
    """A message for the same phone that another dispatcher holds right now."""

    key: Precedence
    transactional: bool


@dataclass
class Neighbours:
    """What else concerns the phones of a batch: opt-outs, recent sends, rival messages."""

    opted_out: set[str] = field(default_factory=set)
    sent: defaultdict[str, list[datetime]] = field(default_factory=lambda: defaultdict(list))
    rivals: defaultdict[str, list[_Rival]] = field(default_factory=lambda: defaultdict(list))


class Verdicts:
    def __init__(self, policy: SendingPolicy, policies: Callable[[str], RulePolicy]) -> None:
        self.policy = policy
        self.policies = policies

    def neighbours(
        self, session: Session, phones: set[str], mine: Collection[int], now: datetime
    ) -> Neighbours:
        found = Neighbours()
        if not phones:
            return found
        found.opted_out = set(session.scalars(select(OptOut.phone).where(OptOut.phone.in_(phones))))
        history = session.execute(
            select(Message.phone, Message.rule, Message.sent_at).where(
                Message.phone.in_(phones),
                Message.status.in_(SENT_STATUSES),
                Message.sent_at > now - timedelta(days=7),
            )
        )
        for phone, rule, sent_at in history:
            if phone and sent_at and not self.policies(rule).transactional:
                found.sent[phone].append(sent_at)
        held = or_(
            Message.status == MessageStatus.SENDING,
            and_(
                Message.status == MessageStatus.QUEUED,
                Message.claim.is_not(None),
                Message.lease_until >= now,
            ),
        )
        others = session.execute(
            select(Message.id, Message.phone, Message.rule, Message.priority, Message.due_at).where(
                Message.phone.in_(phones), held
            )
        )
        for row_id, phone, rule, priority, due_at in others:
            if phone and row_id not in mine:
                rival = _Rival((-priority, due_at, row_id), self.policies(rule).transactional)
                found.rivals[phone].append(rival)
        return found

    def verdict(
        self,
        message: Message,
        customer: Customer,
        phone: str | None,
        rule: RulePolicy,
        now: datetime,
        around: Neighbours,
        report: DispatchReport,
    ) -> dict[str, Any] | None:
        """The row's new state if policy stops it now; None when it may be sent."""
        skip_reason = None
        if not phone:
            skip_reason = "no_phone"
        elif customer.phone_invalid_at is not None:
            skip_reason = "invalid_number"
        elif phone in around.opted_out:
            skip_reason = "opted_out"
        elif not customer.marketing_consent and not rule.transactional:
            # Consent is to marketing; an order confirmation needs none (an opt-out still wins).
            skip_reason = "no_consent"
        if skip_reason is not None:
            report.skipped[skip_reason] += 1
            return final(message.id, MessageStatus.SKIPPED, skip_reason, now)
        assert phone is not None
        if message.expires_at is not None and now > message.expires_at:
            report.expired += 1
            return final(message.id, MessageStatus.EXPIRED, "late", now)
        zone = self.policy.zone(customer.timezone)
        opening = self.policy.next_opening(now, zone, rule)
        if opening > now:
            reason = "quiet_day" if self.policy.is_quiet(now, zone, rule) else "window"
            return _defer(message, opening, reason, MessageStatus.EXPIRED, now, report)
        if rule.transactional:
            return None
        key = precedence(message)
        taken = around.sent[phone] + [
            now for rival in around.rivals[phone] if rival.key < key and not rival.transactional
        ]
        if self.policy.within_caps(now, zone, rule, taken):
            return None
        later = self.policy.next_day_within_caps(now, zone, rule, taken)
        return _defer(message, later, "cap", MessageStatus.SKIPPED, now, report)


def _defer(
    message: Message,
    until: datetime,
    reason: str,
    late_status: MessageStatus,
    now: datetime,
    report: DispatchReport,
) -> dict[str, Any]:
    if message.expires_at is not None and until > message.expires_at:
        if late_status is MessageStatus.SKIPPED:
            report.skipped[reason] += 1
        else:
            report.expired += 1
        return final(message.id, late_status, reason, now)
    report.deferred += 1
    return {**released(message.id, now), "scheduled_for": until, "reason": reason}
