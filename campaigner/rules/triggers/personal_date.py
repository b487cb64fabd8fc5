"""personal_date: a customer's own date (a child's birthday, a wedding anniversary, the
first order), `days_before` it at `send_at`, in each customer's zone.

For the few local days whose send time falls in the window, the original dates celebrated
that day are computed here (one per year back, or only the round `years`), and the
database looks them up in the `customer_dates` index by name and date, or, for the
built-in `first_order`, in the index on `customers.first_order_at` as local-day ranges. The
key is the anniversary's year in the calendar used, as for birthdays.
"""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, Table, and_, false, literal, or_, select

from campaigner.calendars import celebrated_on
from campaigner.customers.fields import FIRST_ORDER
from campaigner.db.models import CustomerDate
from campaigner.rules.models import MAX_YEARS, PersonalDateRule
from campaigner.rules.triggers.common import (
    DueContext,
    customers,
    eligible_found,
    grouped,
    instant,
    local_sends,
    send_instant,
)

customer_dates = cast(Table, CustomerDate.__table__)
EARLIEST_FIRST_ORDER = date(1990, 1, 1)


def due(rule: PersonalDateRule, ctx: DueContext) -> list[Select[Any]]:
    calendars = ("gregorian", "jalali") if rule.calendar == "customer" else (rule.calendar,)
    years = rule.years or range(1, MAX_YEARS + 1)
    branches = []
    for name, zone in sorted(ctx.zones.items()):
        for day, send in local_sends(zone, ctx.start, ctx.end, rule.send_time):
            anniversary = day + timedelta(days=rule.days_before)
            for calendar in calendars:
                year, originals = celebrated_on(anniversary, calendar, years)
                if not originals:
                    continue
                if rule.date == FIRST_ORDER:
                    branch = _first_orders(rule, calendar, originals, zone)
                else:
                    branch = _named_dates(rule, calendar, originals)
                branches.append(
                    branch.add_columns(
                        literal(str(year)).label("key"),
                        instant(send).label("due_at"),
                        instant(send + rule.lateness).label("expires_at"),
                    ).where(customers.c.timezone == name)
                )
    if not branches:
        # Nothing falls due: the same statement, matching nobody, so that `rules check`
        # still has the database compile it.
        branches.append(
            select(customers.c.id.label("id"))
            .add_columns(
                literal("").label("key"),
                instant(ctx.end).label("due_at"),
                instant(ctx.end).label("expires_at"),
            )
            .where(false())
        )

    return grouped(branches, eligible_found(rule, ctx.end))


def _named_dates(rule: PersonalDateRule, calendar: str, originals: list[date]) -> Select[Any]:
    conditions: list[ColumnElement[bool]] = [
        customer_dates.c.name == rule.date,
        customer_dates.c.date.in_(originals),
    ]
    if rule.calendar == "customer":
        uses_jalali = customer_dates.c.calendar == "jalali"
        conditions.append(uses_jalali if calendar == "jalali" else ~uses_jalali)
    return (
        select(customers.c.id.label("id"))
        .select_from(customer_dates.join(customers, customers.c.id == customer_dates.c.customer_id))
        .where(*conditions)
    )


def _first_orders(
    rule: PersonalDateRule, calendar: str, originals: list[date], zone: ZoneInfo
) -> Select[Any]:
    """Customers whose first paid order was on one of `originals`, local time."""
    paid = customers.c.first_order_at
    days = [
        and_(
            paid >= instant(send_instant(day, time(0), zone)),
            paid < instant(send_instant(day + timedelta(days=1), time(0), zone)),
        )
        for day in originals
        if day >= EARLIEST_FIRST_ORDER
    ]
    conditions: list[ColumnElement[bool]] = [or_(*days) if days else false()]
    if rule.calendar == "customer":
        uses_jalali = customers.c.calendar == "jalali"
        conditions.append(uses_jalali if calendar == "jalali" else ~uses_jalali)
    return select(customers.c.id.label("id")).where(*conditions)
