"""When a message may go out: send windows, quiet days and frequency caps.

The dispatcher asks these questions at send time, not only when a message is planned,
because the answer changes: the clock moves, other rules send first, days turn quiet.
Everything here is pure arithmetic on datetimes; the ledger queries live in the dispatcher.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from campaigner.calendars import jalali_date
from campaigner.config import SendingSettings, SendWindow
from campaigner.timezones import zone_or

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_END_OF_DAY = time(23, 59)
_LOOKAHEAD_DAYS = 400  # a year of quiet days still leaves an opening to find


@dataclass(frozen=True)
class RulePolicy:
    """A rule's own sending terms; `None` means "use the global setting".

    Transactional rules (an order confirmation, say) are exempt from caps and quiet days
    and do not count towards the caps of marketing rules.
    """

    priority: int = 0
    window: SendWindow | None = None
    max_per_day: int | None = None
    max_per_week: int | None = None
    transactional: bool = False


@dataclass(frozen=True)
class QuietDays:
    """Days on which marketing waits: weekdays, Gregorian dates, Jalali month-days (yearly)."""

    weekdays: frozenset[int] = frozenset()
    dates: frozenset[date] = frozenset()
    jalali: frozenset[tuple[int, int]] = frozenset()

    @classmethod
    def parse(cls, weekdays: Iterable[str], dates: Iterable[str]) -> QuietDays:
        gregorian: set[date] = set()
        jalali: set[tuple[int, int]] = set()
        for text in dates:
            value = text.strip()
            if value.lower().startswith("jalali:"):
                month, _, day = value[len("jalali:") :].partition("-")
                try:
                    jalali.add((int(month), int(day)))
                except ValueError:
                    raise ValueError(f"quiet date {text!r}: expected jalali:MM-DD") from None
            else:
                try:
                    gregorian.add(date.fromisoformat(value))
                except ValueError:
                    raise ValueError(f"quiet date {text!r}: expected YYYY-MM-DD") from None
        return cls(
            weekdays=frozenset(WEEKDAYS.index(day) for day in weekdays),
            dates=frozenset(gregorian),
            jalali=frozenset(jalali),
        )

    def __contains__(self, day: object) -> bool:
        if not isinstance(day, date):
            return False
        if day.weekday() in self.weekdays or day in self.dates:
            return True
        if self.jalali:
            _, month, dom = jalali_date(day)
            return (month, dom) in self.jalali
        return False


def _segments(window: SendWindow) -> list[tuple[time, time]]:
    """The allowed stretches of one local day; a window like 20:00-02:00 wraps midnight."""
    end = time.max if window.end == _END_OF_DAY else window.end
    if window.start <= end:
        return [(window.start, end)]
    return [(time.min, end), (window.start, time.max)]


class SendingPolicy:
    """The global sending terms from `[sending]`, combined with each rule's overrides."""

    def __init__(self, sending: SendingSettings, default_timezone: str) -> None:
        self.window = sending.send_window
        self.max_per_day = sending.max_per_day
        self.max_per_week = sending.max_per_week
        self.quiet = QuietDays.parse(sending.quiet_weekdays, sending.quiet_dates)
        self.default_timezone = default_timezone

    def zone(self, name: str | None) -> ZoneInfo:
        return zone_or(name, self.default_timezone)

    def caps(self, rule: RulePolicy) -> tuple[int, int]:
        """(per day, per 7 days); 0 means no cap."""
        day = self.max_per_day if rule.max_per_day is None else rule.max_per_day
        week = self.max_per_week if rule.max_per_week is None else rule.max_per_week
        return day, week

    def is_quiet(self, instant: datetime, zone: ZoneInfo, rule: RulePolicy) -> bool:
        return not rule.transactional and instant.astimezone(zone).date() in self.quiet

    def next_opening(self, after: datetime, zone: ZoneInfo, rule: RulePolicy) -> datetime:
        """The earliest instant from `after` on inside the window, on a day that is not quiet."""
        window = rule.window or self.window
        local = after.astimezone(zone)
        for offset in range(_LOOKAHEAD_DAYS):
            day = local.date() + timedelta(days=offset)
            if not rule.transactional and day in self.quiet:
                continue
            for start, end in _segments(window):
                opening = datetime.combine(day, start, tzinfo=zone)
                closing = datetime.combine(day, end, tzinfo=zone)
                candidate = max(opening, local)
                if candidate <= closing:
                    return candidate.astimezone(UTC)
        raise ValueError("no sending day in the coming year: check sending.quiet_* settings")

    def within_caps(
        self, at: datetime, zone: ZoneInfo, rule: RulePolicy, sent: Sequence[datetime]
    ) -> bool:
        """Whether one more marketing message at `at` fits, given those already sent."""
        if rule.transactional:
            return True
        per_day, per_week = self.caps(rule)
        local_day = at.astimezone(zone).date()
        if per_day and sum(1 for s in sent if s.astimezone(zone).date() == local_day) >= per_day:
            return False
        week_start = at - timedelta(days=7)
        return not (per_week and sum(1 for s in sent if week_start < s <= at) >= per_week)

    def next_day_within_caps(
        self, now: datetime, zone: ZoneInfo, rule: RulePolicy, sent: Sequence[datetime]
    ) -> datetime:
        """The first moment on a later local day where the caps leave room: the day's
        opening, or later that day when an old message leaves the 7-day count."""
        day = now.astimezone(zone).date()
        week_exits = sorted(s + timedelta(days=7, seconds=1) for s in sent)
        for offset in range(1, _LOOKAHEAD_DAYS):
            start_of_day = datetime.combine(day + timedelta(days=offset), time.min, tzinfo=zone)
            opening = self.next_opening(start_of_day, zone, rule)
            same_day = [t for t in week_exits if t > opening and _same_day(t, opening, zone)]
            for candidate in (opening, *same_day):
                fits = self.within_caps(candidate, zone, rule, sent)
                if fits and self.next_opening(candidate, zone, rule) == candidate:
                    return candidate
        raise ValueError("caps leave no room in the coming year: check sending.max_per_*")


def end_of_day(at: datetime, zone: ZoneInfo) -> datetime:
    """The next local midnight after `at` in `zone`, in UTC: where that recipient's day ends."""
    tomorrow = at.astimezone(zone).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time.min, tzinfo=zone).astimezone(UTC)


def _same_day(a: datetime, b: datetime, zone: ZoneInfo) -> bool:
    return a.astimezone(zone).date() == b.astimezone(zone).date()
