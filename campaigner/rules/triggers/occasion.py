"""occasion: a calendar day (Nowruz, Yalda, Black Friday, Eid), `days_before` it at `send_at`,
in each customer's own time zone.

The occasion's days are computed here for the few local days whose send time falls in the
window, per zone; the database only picks the zone's eligible customers. The key is the
occasion's Gregorian date, so next year's Nowruz is a new occurrence and this year's is
never sent twice, whatever the time zone.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Select, false, literal, select

from campaigner.rules.models import OccasionRule
from campaigner.rules.triggers.common import (
    DueContext,
    customers,
    eligible_found,
    grouped,
    instant,
    local_sends,
)


def due(rule: OccasionRule, ctx: DueContext) -> list[Select[Any]]:
    spec = rule.occasion_date
    ahead = timedelta(days=rule.days_before)
    first = ctx.start.date() - timedelta(days=2) + ahead
    last = ctx.end.date() + timedelta(days=2) + ahead
    days = set(spec.between(first, last, ctx.occasions.get(spec.key)))
    branches = []
    for name, zone in sorted(ctx.zones.items()):
        for day, send in local_sends(zone, ctx.start, ctx.end, rule.send_time):
            occasion = day + ahead
            if occasion in days:
                branches.append(
                    select(
                        customers.c.id.label("id"),
                        literal(occasion.isoformat()).label("key"),
                        instant(send).label("due_at"),
                        instant(send + rule.lateness).label("expires_at"),
                    ).where(customers.c.timezone == name)
                )
    if not branches:
        # Nothing falls due: the same statement, matching nobody, so that `rules check`
        # still has the database compile it.
        branches.append(
            select(
                customers.c.id.label("id"),
                literal("").label("key"),
                instant(ctx.end).label("due_at"),
                instant(ctx.end).label("expires_at"),
            ).where(false())
        )

    return grouped(branches, eligible_found(rule, ctx.end))
