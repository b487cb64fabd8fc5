"""birthday: on the birthday (`days_before` earlier) at `send_at`, in each customer's zone.

Time zones are few, so for each zone the handful of local days whose send time falls in the
window are computed here, and the database matches the indexed month-day columns
(`birth_md`, `birth_jalali_md`). The key is the year, in the calendar used.
"""

from __future__ import annotations

from calendar import isleap
from datetime import date, timedelta
from typing import Any

import jdatetime
from sqlalchemy import ColumnElement, Select, literal, select

from campaigner.calendars import month_day, to_jalali
from campaigner.rules.models import BirthdayRule
from campaigner.rules.triggers.common import (
    DueContext,
    customers,
    eligible_found,
    grouped,
    instant,
    local_sends,
)

FEB_29 = 229
ESFAND_30 = 1230


def month_days(day: date, calendar: str) -> tuple[list[int], int]:
    """Birthdays (month*100+day) celebrated on `day` in `calendar`, and that calendar's year.

    Feb 29 is celebrated on Feb 28 in common years; Esfand 30 on Esfand 29 in common years.
    """
    if calendar == "jalali":
        jday = to_jalali(day)
        days = [jday.month * 100 + jday.day]
        if (jday.month, jday.day) == (12, 29) and not jdatetime.date(jday.year, 1, 1).isleap():
            days.append(ESFAND_30)
        return days, jday.year
    days = [month_day(day)]
    if (day.month, day.day) == (2, 28) and not isleap(day.year):
        days.append(FEB_29)
    return days, day.year


def due(rule: BirthdayRule, ctx: DueContext) -> list[Select[Any]]:
    calendars = ("gregorian", "jalali") if rule.calendar == "customer" else (rule.calendar,)
    branches = []
    for name, zone in sorted(ctx.zones.items()):
        for day, send in local_sends(zone, ctx.start, ctx.end, rule.send_time):
            birthday = day + timedelta(days=rule.days_before)
            for calendar in calendars:
                days, year = month_days(birthday, calendar)
                column = customers.c.birth_md
                if calendar == "jalali":
                    column = customers.c.birth_jalali_md
                conditions: list[ColumnElement[bool]] = [
                    customers.c.timezone == name,
                    column.in_(days),
                ]
                if rule.calendar == "customer":
                    uses_jalali = customers.c.calendar == "jalali"
                    conditions.append(uses_jalali if calendar == "jalali" else ~uses_jalali)
                branches.append(
                    select(
                        customers.c.id.label("id"),
                        literal(str(year)).label("key"),
                        instant(send).label("due_at"),
                        instant(send + rule.lateness).label("expires_at"),
                    ).where(*conditions)
                )

    return grouped(branches, eligible_found(rule, ctx.end))
