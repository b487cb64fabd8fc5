"""What the dashboard shows: the ledger per rule for today and this week (in the shop's
time zone), the queue, the daemons' own reports, the sources' last syncs, sends per day."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup
from sqlalchemy import Integer, case, cast, func, select
from sqlalchemy.orm import Session

from campaigner.config import Settings
from campaigner.daemon.heartbeats import daemon_heartbeats
from campaigner.db.models import Message, MessageStatus, SyncState
from campaigner.dispatch.overview import QueueOverview, queue_overview
from campaigner.reports import charts

FIGURES = ("planned", "sent", "delivered", "failed", "skipped")
CHART_DAYS = 14


@dataclass
class Dashboard:
    day: date
    today: dict[str, dict[str, int]] = field(default_factory=dict)  # rule -> figure -> count
    week: dict[str, dict[str, int]] = field(default_factory=dict)
    queue: QueueOverview = field(default_factory=QueueOverview)
    daemons: list[dict[str, Any]] = field(default_factory=list)
    syncs: list[tuple[str, datetime]] = field(default_factory=list)
    chart: Markup = field(default_factory=Markup)


def dashboard(session: Session, settings: Settings, now: datetime) -> Dashboard:
    zone = ZoneInfo(settings.customers.timezone)
    today = now.astimezone(zone).date()
    start_of = _start_of_day(zone)
    board = Dashboard(
        day=today,
        today=_figures(session, start_of(today)),
        week=_figures(session, start_of(today - timedelta(days=6))),
        queue=queue_overview(session, now, unknown_limit=20),
        daemons=[
            beat
            for beat in daemon_heartbeats(session)
            if (now - datetime.fromisoformat(beat["last_tick"])).total_seconds()
            <= settings.daemon.gone_after
        ],
    )
    board.syncs = [
        (name.removeprefix("source:"), updated)
        for name, updated in session.execute(
            select(SyncState.name, SyncState.updated_at)
            .where(SyncState.name.like("source:%"))
            .order_by(SyncState.name)
        )
    ]
    board.chart = _chart(session, today, start_of)
    return board


def _start_of_day(zone: ZoneInfo) -> Any:
    return lambda day: datetime.combine(day, time(0), zone)


def _figures(session: Session, start: datetime) -> dict[str, dict[str, int]]:
    """Events since `start`: a row changes `updated_at` whenever anything happens to it, so
    rows updated before `start` hold no event of the period."""

    def counted(condition: Any) -> Any:
        return func.sum(cast(case((condition, 1), else_=0), Integer))

    rows = session.execute(
        select(
            Message.rule,
            counted(Message.created_at >= start),
            counted(Message.sent_at >= start),
            counted(Message.delivered_at >= start),
            counted(Message.status == MessageStatus.FAILED),
            counted(Message.status == MessageStatus.SKIPPED),
        )
        .where(Message.updated_at >= start)
        .group_by(Message.rule)
        .order_by(Message.rule)
    )
    return {
        rule: dict(zip(FIGURES, (int(n or 0) for n in numbers), strict=True))
        for rule, *numbers in rows
    }


def _chart(session: Session, today: date, start_of: Any) -> Markup:
    days = [today - timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1)]
    lines: dict[str, list[int]] = {}
    for index, day in enumerate(days):
        counts = session.execute(
            select(Message.rule, func.count())
            .where(
                Message.sent_at >= start_of(day),
                Message.sent_at < start_of(day + timedelta(days=1)),
            )
            .group_by(Message.rule)
        )
        for rule, number in counts:
            lines.setdefault(rule, [0] * len(days))[index] = number
    title = "Messages sent per day"
    if not lines:
        return charts.no_data(title)
    return charts.line_chart(title, days, dict(sorted(lines.items())))


def rule_counts(
    session: Session, settings: Settings, now: datetime
) -> dict[str, tuple[int, datetime | None]]:
    """Per rule: messages sent today, and the next queued due time."""
    zone = ZoneInfo(settings.customers.timezone)
    start = _start_of_day(zone)(now.astimezone(zone).date())
    sent: dict[str, int] = dict(
        session.execute(
            select(Message.rule, func.count())
            .where(Message.sent_at >= start)
            .group_by(Message.rule)
        ).all()
    )
    due: dict[str, datetime | None] = dict(
        session.execute(
            select(Message.rule, func.min(Message.scheduled_for))
            .where(Message.status == MessageStatus.QUEUED)
            .group_by(Message.rule)
        ).all()
    )
    return {rule: (sent.get(rule, 0), due.get(rule)) for rule in set(sent) | set(due)}
