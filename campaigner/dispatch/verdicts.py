"""The sending policy asked again for each claimed row, at the moment it would go out.

Consent, opt-out, a rule's own condition (`Recheck`: a cross-sell whose suggestion was
bought meanwhile), expiry, window, quiet days and caps are checked here rather than at
planning time, because the answers change. Caps count what was sent in the last week and
what other dispatchers hold right now (claimed or sending) with higher precedence, so two
dispatchers never both take a phone's last slot.

Caps also look ahead within the recipient's day: a message does not take the last slot
that a higher-precedence message for the same phone will want later that day, whether it
is queued for later (due later, or deferred into the day) or not planned yet (a rule's
`Forecast`). It waits for that message's turn instead (reason `cap_priority`), and goes
the same day if the slot is still free then.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from campaigner.db.models import Customer, Message, MessageStatus, OptOut
from campaigner.dispatch.ledger import final, released
from campaigner.dispatch.report import DispatchReport
from campaigner.planner import Unplanned
from campaigner.policy import RulePolicy, SendingPolicy, end_of_day

SENT_STATUSES = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.UNDELIVERED)
# A rival already due but not planned (or not claimed) yet: ask again this soon.
ASK_AGAIN = timedelta(minutes=1)

Precedence = tuple[int, datetime, int]


class Ranked(Protocol):
    """A ledger row, as an ORM object or a plain row of its columns."""

    @property
    def priority(self) -> int: ...
    @property
    def due_at(self) -> datetime: ...
    @property
    def id(self) -> int: ...


class Waiting(Protocol):
    """A message (in the ledger or not planned yet) that will want a slot."""

    @property
    def rule(self) -> str: ...
    @property
    def expires_at(self) -> datetime | None: ...


def precedence(message: Ranked) -> Precedence:
    """Higher priority first, then the older due time (then the older row)."""
    return (-message.priority, message.due_at, message.id)


class Forecast(Protocol):
    """What planning will queue for `phones` by `until` and has not yet: the enabled
    marketing rules of at least `min_priority`, in the customer zones named."""

    def __call__(
        self,
        session: Session,
        phones: Collection[str],
        zones: Collection[str],
        now: datetime,
        until: datetime,
        min_priority: int,
    ) -> Sequence[Unplanned]: ...


class Recheck(Protocol):
    """Of a batch's `messages`, those whose rule's condition stopped holding by `now` (the
    customer bought what it suggests, say), each with its skip reason."""

    def __call__(
        self, session: Session, messages: Sequence[Message], now: datetime
    ) -> dict[int, str]: ...


_OTHER_COLUMNS = (
    Message.id,
    Message.rule,
    Message.phone,
    Message.status,
    Message.claim,
    Message.lease_until,
    Message.scheduled_for,
    Message.expires_at,
    Message.priority,
    Message.due_at,
)


@dataclass(frozen=True)
class _Rival:
    """A message for the same phone that another dispatcher holds right now."""

    key: Precedence
    transactional: bool


@dataclass(frozen=True)
class _Ahead:
    """A marketing message for the same phone that will want a slot at `at`."""

    key: Precedence
    at: datetime
    rule: RulePolicy


@dataclass
class Neighbours:
    """What else concerns the phones of a batch: opt-outs, recent sends, rival messages;
    and the batch's messages whose rule's condition stopped holding (`gone`)."""

    opted_out: set[str] = field(default_factory=set)
    gone: dict[int, str] = field(default_factory=dict)  # message id -> skip reason
    sent: defaultdict[str, list[datetime]] = field(default_factory=lambda: defaultdict(list))
    rivals: defaultdict[str, list[_Rival]] = field(default_factory=lambda: defaultdict(list))
    ahead: defaultdict[str, list[_Ahead]] = field(default_factory=lambda: defaultdict(list))


class Verdicts:
    def __init__(
        self,
        policy: SendingPolicy,
        policies: Callable[[str], RulePolicy],
        forecast: Forecast | None = None,
        recheck: Recheck | None = None,
    ) -> None:
        self.policy = policy
        self.policies = policies
        self.forecast = forecast
        self.recheck = recheck
        self._openings: dict[tuple[ZoneInfo, str | None, bool], datetime] = {}
        self._openings_at: datetime | None = None

    def neighbours(
        self,
        session: Session,
        batch: Sequence[tuple[Message, Customer]],
        now: datetime,
        claim: str,
    ) -> Neighbours:
        """One query each for opt-outs, recent sends, other ledger rows and the forecast of
        the batch's phones, and one per rule with a condition to re-check; the batch's rows
        are those claimed under `claim`."""
        found = Neighbours()
        if self.recheck is not None:
            found.gone = self.recheck(session, [message for message, _ in batch], now)
        phones = {phone for m, c in batch if (phone := m.phone or c.phone)}
        if not phones:
            return found
        zones = {customer.timezone for _, customer in batch}
        until = max(end_of_day(now, self.policy.zone(name)) for name in zones)
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
        self._note_others(session, found, phones, claim, now, until)
        marketing = [m.priority for m, _ in batch if not self.policies(m.rule).transactional]
        if marketing and self.forecast is not None:
            for due in self.forecast(session, phones, zones, now, until, min(marketing)):
                key = (-due.priority, due.due_at, sys.maxsize)
                self._add_ahead(found, due.phone, key, max(now, due.due_at), due, due.timezone)
        return found

    def _note_others(
        self,
        session: Session,
        found: Neighbours,
        phones: set[str],
        claim: str,
        now: datetime,
        until: datetime,
    ) -> None:
        """The phones' other rows: held by another dispatcher right now (they count as sent
        now), or queued for a time before `until` (they count at their next chance)."""
        held = or_(
            Message.status == MessageStatus.SENDING,
            and_(Message.claim.is_not(None), Message.lease_until >= now),
        )
        # Plain rows, not ORM objects: only a few columns are read. The batch's own rows
        # stay in the database: fetched, they were most of the rows read.
        others = session.execute(
            select(*_OTHER_COLUMNS, Customer.timezone)
            .join(Customer, Customer.id == Message.customer_id)
            .where(
                Message.phone.in_(phones),
                Message.status.in_((MessageStatus.QUEUED, MessageStatus.SENDING)),
                or_(held, Message.scheduled_for <= until),
                Message.claim.is_distinct_from(claim),
            )
        )
        for other in others:
            if not other.phone:
                continue
            transactional = self.policies(other.rule).transactional
            if other.status == MessageStatus.SENDING or (
                other.claim is not None and other.lease_until and other.lease_until >= now
            ):
                found.rivals[other.phone].append(_Rival(precedence(other), transactional))
            elif not transactional:
                start = max(now, other.scheduled_for)
                self._add_ahead(found, other.phone, precedence(other), start, other, other.timezone)

    def _add_ahead(
        self,
        found: Neighbours,
        phone: str,
        key: Precedence,
        start: datetime,
        row: Waiting,
        timezone: str,
    ) -> None:
        """Note the message's next chance to go, if it has one before it expires."""
        rule = self.policies(row.rule)
        at = self.policy.next_opening(start, self.policy.zone(timezone), rule)
        if row.expires_at is None or at <= row.expires_at:
            found.ahead[phone].append(_Ahead(key, at, rule))

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
        elif message.id in around.gone:
            skip_reason = around.gone[message.id]
        if skip_reason is not None:
            report.skipped[skip_reason] += 1
            return final(message.id, MessageStatus.SKIPPED, skip_reason, now)
        assert phone is not None
        if message.expires_at is not None and now > message.expires_at:
            report.expired += 1
            return final(message.id, MessageStatus.EXPIRED, "late", now)
        zone = self.policy.zone(customer.timezone)
        opening = self._opening(now, zone, rule)
        if opening > now:
            reason = "quiet_day" if self.policy.is_quiet(now, zone, rule) else "window"
            change = _defer(message, opening, reason, MessageStatus.EXPIRED, now, report)
            return _noted(change, message, phone, rule, around)
        if rule.transactional:
            return None
        key = precedence(message)
        taken = around.sent[phone] + [
            now for rival in around.rivals[phone] if rival.key < key and not rival.transactional
        ]
        if not self.policy.within_caps(now, zone, rule, taken):
            # A row that already gave way to a higher priority keeps saying so.
            reason = "cap_priority" if message.reason == "cap_priority" else "cap"
            later = self.policy.next_day_within_caps(now, zone, rule, taken)
            change = _defer(message, later, reason, MessageStatus.SKIPPED, now, report)
            return _noted(change, message, phone, rule, around)
        today = now.astimezone(zone).date()
        ahead = [
            other
            for other in around.ahead[phone]
            if other.key < key and other.at.astimezone(zone).date() == today
        ]
        blocked = self._gives_way_to(now, zone, rule, taken, ahead)
        if blocked is None:
            return None
        until = max(blocked.at, now + ASK_AGAIN)
        change = _defer(message, until, "cap_priority", MessageStatus.SKIPPED, now, report)
        return _noted(change, message, phone, rule, around)

    def _opening(self, now: datetime, zone: ZoneInfo, rule: RulePolicy) -> datetime:
        """`next_opening` from `now`, worked out once per zone and window for a batch: its
        messages share `now`, and most share a few zones and windows."""
        if self._openings_at != now:
            self._openings.clear()
            self._openings_at = now
        key = (zone, str(rule.window) if rule.window else None, rule.transactional)
        opening = self._openings.get(key)
        if opening is None:
            opening = self._openings[key] = self.policy.next_opening(now, zone, rule)
        return opening

    def _gives_way_to(
        self,
        now: datetime,
        zone: ZoneInfo,
        rule: RulePolicy,
        taken: list[datetime],
        ahead: list[_Ahead],
    ) -> _Ahead | None:
        """The first message ahead that would find the caps full because of one more send
        now, though it fits without it; None when sending now costs none of them its slot."""
        without, with_this = list(taken), [*taken, now]
        for other in sorted(ahead, key=lambda other: (other.at, other.key)):
            if not self.policy.within_caps(other.at, zone, other.rule, without):
                continue  # it finds no room either way
            if not self.policy.within_caps(other.at, zone, other.rule, with_this):
                return other
            without.append(other.at)
            with_this.append(other.at)
        return None


def _noted(
    change: dict[str, Any], message: Message, phone: str, rule: RulePolicy, around: Neighbours
) -> dict[str, Any]:
    """A marketing row that waits keeps its slot at its new time: the rows after it in the
    batch (of lower precedence) must leave it room too."""
    if change["status"] == MessageStatus.QUEUED and not rule.transactional:
        around.ahead[phone].append(_Ahead(precedence(message), change["scheduled_for"], rule))
    return change


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
