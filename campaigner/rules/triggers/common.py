"""What every trigger's query shares: the due window, who may be messaged, date arithmetic.

Each trigger compiles a rule to SELECTs with the columns of `DUE_COLUMNS` (one, or one per
hundred zone-days), so the planner inserts its rows into the ledger by INSERT … SELECT.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Subquery,
    Table,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy import Integer as SAInteger
from sqlalchemy import (
    cast as sa_cast,
)
from sqlalchemy.types import Interval

from campaigner.db.models import Customer, OptOut, Order, UTCDateTime
from campaigner.products.bought import bought, paid_and_kept
from campaigner.rules.models import Audience, Bought, Condition, RuleBase
from campaigner.segments.membership import in_segments

customers = cast(Table, Customer.__table__)
orders = cast(Table, Order.__table__)
opt_outs = cast(Table, OptOut.__table__)

DUE_COLUMNS = ("customer_id", "occurrence_key", "due_at", "expires_at", "order_id", "phone")
UTC_ZONE = ZoneInfo("UTC")
# SQLite refuses a compound SELECT of more than 500 terms.
MAX_BRANCHES = 100


@dataclass(frozen=True)
class DueContext:
    """Where and when to look: occurrences due in [start, end], and the customers' time zones.

    `zones` maps each time zone name found on customers to the zone to compute in (an unknown
    name falls back to the shop's zone). `occasions` are the shop's corrections to computed
    occasion dates (`[occasions.overrides]`).
    """

    start: datetime
    end: datetime
    zones: dict[str, ZoneInfo]
    dialect: str
    shop: ZoneInfo = UTC_ZONE  # the shop's zone (`customers.timezone`)
    occasions: Mapping[str, Mapping[int, date]] = field(default_factory=dict)


def eligible(rule: RuleBase, now: datetime | None = None) -> list[ColumnElement[bool]]:
    """A phone that works and has not opted out, consent for marketing, and the audience
    (`now` measures its `within`)."""
    conditions: list[ColumnElement[bool]] = [
        customers.c.phone.is_not(None),
        customers.c.phone_invalid_at.is_(None),
        ~exists().where(opt_outs.c.phone == customers.c.phone),
    ]
    if not rule.transactional:
        conditions.append(customers.c.marketing_consent.is_(True))
    return conditions + audience_filter(rule.audience, now)


def audience_filter(audience: Audience, now: datetime | None = None) -> list[ColumnElement[bool]]:
    tags = customers.c.tags
    conditions: list[ColumnElement[bool]] = []
    if audience.tags_any:
        conditions.append(or_(*(_has_tag(tags, tag) for tag in audience.tags_any)))
    conditions.extend(_has_tag(tags, tag) for tag in audience.tags_all)
    conditions.extend(~_has_tag(tags, tag) for tag in audience.tags_none)
    if audience.min_orders is not None:
        conditions.append(customers.c.orders_count >= audience.min_orders)
    if audience.max_orders is not None:
        conditions.append(customers.c.orders_count <= audience.max_orders)
    if audience.min_total_spent is not None:
        conditions.append(customers.c.total_spent >= audience.min_total_spent)
    if audience.locales:
        conditions.append(customers.c.locale.in_(audience.locales))
    if audience.segments:
        conditions.append(in_segments(customers.c.id, audience.segments))
    conditions.extend(_condition(condition) for condition in audience.where)
    if audience.bought_any is not None:
        conditions.append(_bought(audience.bought_any, now, "bought_any"))
    if audience.bought_none is not None:
        conditions.append(~_bought(audience.bought_none, now, "bought_none"))
    return conditions


def _bought(spec: Bought, now: datetime | None, name: str) -> ColumnElement[bool]:
    within = spec.within_td
    if within is not None and now is None:
        raise ValueError("a `within` needs the moment it is measured from")
    since = None if within is None or now is None else instant(now - within)
    until = None if now is None else instant(now)
    return bought(spec, customers.c.id, since=since, until=until, name=name)


def _has_tag(tags: Any, tag: str) -> ColumnElement[bool]:
    return cast(ColumnElement[bool], tags.contains(f",{tag},", autoescape=True))


_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda column, value: column.in_(value),
    "not_in": lambda column, value: column.not_in(value),
}


def _condition(condition: Condition) -> ColumnElement[bool]:
    column = customers.c[condition.field]
    return cast(ColumnElement[bool], _OPS[condition.op](column, condition.value))


def shift(column: Any, delta: timedelta, dialect: str) -> ColumnElement[datetime]:
    """`column + delta` for a stored UTC datetime, in SQL, on SQLite and PostgreSQL.

    SQLite keeps datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' text; the result keeps that exact
    format (whole seconds are shifted, the fraction is carried over) so comparisons stay right.
    """
    if dialect == "sqlite":
        seconds = int(delta.total_seconds())
        shifted = func.strftime(
            "%Y-%m-%d %H:%M:%S", column, f"{'+' if seconds >= 0 else '-'}{abs(seconds)} seconds"
        ).concat(func.substr(column, 20))
        return type_coerce(shifted, UTCDateTime())
    return type_coerce(column + literal(delta, Interval()), UTCDateTime())


def instant(value: datetime) -> ColumnElement[datetime]:
    return literal(value, UTCDateTime())


def due_columns(
    customer_id: Any,
    occurrence_key: Any,
    due_at: Any,
    expires_at: Any,
    order_id: Any,
) -> list[ColumnElement[Any]]:
    return [
        customer_id.label("customer_id"),
        type_coerce(occurrence_key, String()).label("occurrence_key"),
        due_at.label("due_at"),
        expires_at.label("expires_at"),
        order_id.label("order_id"),
        customers.c.phone.label("phone"),
    ]


def after_paid_order(
    rule: RuleBase, ctx: DueContext, delay: timedelta, *conditions: ColumnElement[bool]
) -> Select[Any]:
    """Occurrences due `delay` after a paid order (of those matching `conditions`) was paid;
    the order id is the occurrence key, so each order is asked about once."""
    paid_at = orders.c.paid_at
    return (
        select(
            *due_columns(
                customers.c.id,
                key_text(orders.c.id),
                shift(paid_at, delay, ctx.dialect),
                shift(paid_at, delay + rule.lateness, ctx.dialect),
                orders.c.id,
            )
        )
        .select_from(orders.join(customers, customers.c.id == orders.c.customer_id))
        .where(
            *conditions,
            paid_and_kept(),
            paid_at >= ctx.start - delay,
            paid_at <= ctx.end - delay,
            *eligible(rule, ctx.end),
        )
    )


def no_order() -> ColumnElement[int]:
    """A typed NULL order id for occurrences of no order (PostgreSQL needs the type)."""
    return sa_cast(null(), SAInteger())


def key_text(column: Any) -> ColumnElement[str]:
    """An id as the ledger's text occurrence key."""
    return sa_cast(column, String(128))


def local_sends(
    zone: ZoneInfo, start: datetime, end: datetime, at: time
) -> Iterator[tuple[date, datetime]]:
    """Each local date whose `at` o'clock in `zone` falls in [start, end], with that instant."""
    first = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    day = first
    while day <= last:
        moment = send_instant(day, at, zone)
        if start <= moment <= end:
            yield day, moment
        day += timedelta(days=1)


def send_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """`at` o'clock local time on `day`, in UTC."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def eligible_found(rule: RuleBase, now: datetime) -> Callable[[Subquery], Select[Any]]:
    """For `grouped`: the customers found (columns id, key, due_at, expires_at) who are
    eligible for `rule` (its `within` measured from `now`), as due rows with no order."""

    def due(found: Subquery) -> Select[Any]:
        return (
            select(
                *due_columns(
                    customers.c.id, found.c.key, found.c.due_at, found.c.expires_at, no_order()
                )
            )
            .select_from(found.join(customers, customers.c.id == found.c.id))
            .where(*eligible(rule, now))
        )

    return due


def grouped(
    branches: Sequence[Select[Any]], due: Callable[[Subquery], Select[Any]]
) -> list[Select[Any]]:
    """The branches (one per zone and day) as UNION ALLs of at most MAX_BRANCHES each, every
    one wrapped by `due` into the due columns: a long `max_lateness` or many time zones make
    more statements, never one that outgrows the database's limits."""
    statements = []
    for start in range(0, len(branches), MAX_BRANCHES):
        group = branches[start : start + MAX_BRANCHES]
        found = group[0] if len(group) == 1 else union_all(*group)
        statements.append(due(found.subquery("found")))
    return statements
