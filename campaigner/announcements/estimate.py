"""What an announcement will cost before it goes: its audience, its texts' length and
encoding (rendered for a sample of the audience), and the price from `[pricing]`.

Rendering may issue coupons or referral codes, so it runs in a session that is rolled back.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.announcements import gate
from campaigner.config import Settings
from campaigner.db.models import Announcement, Message
from campaigner.messages.render import MessageRenderer, RenderError
from campaigner.messages.templates import MessageTemplates
from campaigner.planner import customer_zones
from campaigner.rules.models import AnnouncementRule
from campaigner.rules.triggers import DueContext, compile_due

SAMPLE = 50


@dataclass
class Estimate:
    rule: str
    audience: int = 0  # customers who would be queued now (or were)
    queued: int = 0  # already in the ledger for this announcement
    first_due: datetime | None = None
    last_due: datetime | None = None
    sampled: int = 0
    encodings: Counter[str] = field(default_factory=Counter)
    segments: Counter[int] = field(default_factory=Counter)  # texts per segment count
    failures: list[str] = field(default_factory=list)  # sample texts that cannot be rendered
    cost_per_text: float = 0.0
    currency: str = ""
    record: Announcement | None = None

    @property
    def total(self) -> int:
        return self.audience + self.queued

    @property
    def segments_total(self) -> int:
        """Segments for the whole audience, from the sample's average."""
        if not self.sampled:
            return 0
        sampled = sum(count * texts for count, texts in self.segments.items())
        return round(sampled * self.total / self.sampled)

    @property
    def cost(self) -> float:
        return self.cost_per_text * self.total

    def lines(self) -> list[str]:
        """What `rules check` and `announce` print, one fact per line."""
        lines = [f"audience: {self.total} customer(s)" + self._queued()]
        if self.first_due is not None and self.last_due is not None:
            lines.append(
                f"due: {self.first_due:%Y-%m-%d %H:%M} to {self.last_due:%Y-%m-%d %H:%M} UTC"
            )
        if self.sampled:
            kinds = ", ".join(
                f"{texts} of {count} segment(s)" for count, texts in sorted(self.segments.items())
            )
            encodings = ", ".join(
                f"{name.upper().replace('UCS2', 'UCS-2').replace('GSM7', 'GSM-7')} {texts}"
                for name, texts in sorted(self.encodings.items())
            )
            lines.append(f"texts (a sample of {self.sampled}): {kinds}; {encodings}")
            lines.append(
                f"estimated: {self.segments_total} segment(s), "
                f"{self.cost:,.2f} {self.currency} (from [pricing])"
            )
        lines.extend(f"cannot be rendered: {failure}" for failure in self.failures[:3])
        lines.append(self._approval())
        return lines

    def _queued(self) -> str:
        return f", {self.queued} already queued or sent" if self.queued else ""

    def _approval(self) -> str:
        record = self.record
        if record is not None and record.withdrawn_at is not None:
            return f"withdrawn at {record.withdrawn_at:%Y-%m-%d %H:%M} UTC"
        if record is not None and record.approved_at is not None:
            approval = (
                f"approved by {record.approved_by} at {record.approved_at:%Y-%m-%d %H:%M} UTC"
            )
            if record.queued_at is not None:
                approval += f", queued at {record.queued_at:%Y-%m-%d %H:%M} UTC"
            return approval
        return f"NOT APPROVED: nothing is queued until `campaigner announce {self.rule} --confirm`"


def estimate(
    settings: Settings,
    sessions: sessionmaker[Session],
    rule: AnnouncementRule,
    now: datetime,
    templates: MessageTemplates | None = None,
) -> Estimate:
    """The announcement as it would be queued at `now`; nothing is written."""
    result = Estimate(rule=rule.name, currency=settings.pricing.currency)
    renderer = MessageRenderer(
        settings, templates or MessageTemplates(settings.paths.templates, settings)
    )
    with sessions() as session:
        try:
            result.record = gate.record(session, rule.name, rule.occurrence_key)
            if result.record is not None:
                session.expunge(result.record)
            result.queued = (
                session.scalar(
                    select(func.count()).where(
                        Message.rule == rule.name, Message.occurrence_key == rule.occurrence_key
                    )
                )
                or 0
            )
            ctx = DueContext(
                now - rule.lateness,
                now + gate.HORIZON,
                customer_zones(session, settings),
                session.get_bind().dialect.name,
                ZoneInfo(settings.customers.timezone),
            )
            for statement in compile_due(rule, ctx):
                due = statement.subquery("due")
                fresh = (
                    ~select(Message.id)
                    .where(
                        Message.rule == rule.name,
                        Message.customer_id == due.c.customer_id,
                        Message.occurrence_key == due.c.occurrence_key,
                    )
                    .exists()
                )
                count, first, last = session.execute(
                    select(func.count(), func.min(due.c.due_at), func.max(due.c.due_at)).where(
                        fresh
                    )
                ).one()
                result.audience += count
                result.first_due = _earliest(result.first_due, first)
                result.last_due = _latest(result.last_due, last)
                sample = session.execute(
                    select(due.c.customer_id, due.c.due_at, due.c.phone)
                    .where(fresh)
                    .order_by(due.c.customer_id)
                    .limit(SAMPLE - result.sampled)
                ).all()
                for customer_id, due_at, phone in sample:
                    _measure(session, renderer, rule, result, customer_id, due_at, phone, now)
        finally:
            session.rollback()
    return result


def _measure(
    session: Session,
    renderer: MessageRenderer,
    rule: AnnouncementRule,
    result: Estimate,
    customer_id: int,
    due_at: datetime,
    phone: str,
    now: datetime,
) -> None:
    message = Message(
        rule=rule.name,
        customer_id=customer_id,
        occurrence_key=rule.occurrence_key,
        phone=phone,
        due_at=due_at,
        scheduled_for=due_at,
    )
    try:
        rendered = renderer.render(session, message, rule, now)
    except RenderError as exc:
        result.failures.append(str(exc))
        return
    result.sampled += 1
    result.encodings[rendered.encoding] += 1
    result.segments[rendered.segments] += 1
    price = (
        renderer.settings.pricing.ucs2
        if rendered.encoding == "ucs2"
        else renderer.settings.pricing.gsm7
    )
    # The running average price of one text over the sample.
    result.cost_per_text += (price * rendered.segments - result.cost_per_text) / result.sampled


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)
