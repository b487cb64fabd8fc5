"""announcement: one message at `at`, in each customer's zone or one instant for the shop.

Each zone's `at` is one instant, computed here; with `spread`, a customer's message is due a
stable number of seconds after it (a hash of the rule and the customer, the same on every
database), so a large audience is spread evenly over the span. The occurrence key is `at`:
with the rule's name in the ledger's key, one message per customer per announcement.
"""

from __future__ import annotations

import json
import math
import zlib
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    case,
    func,
    literal,
    or_,
    select,
    type_coerce,
)
from sqlalchemy import cast as sa_cast

from campaigner.db.models import UTCDateTime
from campaigner.rules.models import AnnouncementAudience, AnnouncementRule
from campaigner.rules.triggers.common import (
    DueContext,
    customers,
    due_columns,
    eligible,
    instant,
    no_order,
)

_PRIME = 2_147_483_647  # 2**31 - 1, as for holdouts: a·id + b stays inside 64 bits


def due(rule: AnnouncementRule, ctx: DueContext) -> Select[Any]:
    """One scan of the customers: each one's due time is their zone's `at` (a CASE over
    the few zones) plus their spread offset, as Unix seconds, kept if inside the window."""
    spread = int(rule.spread_td.total_seconds())
    if rule.timezone == "shop":
        start: Any = literal(_start(rule, ctx.shop), BigInteger)
    else:
        starts = {
            name: literal(_start(rule, zone), BigInteger)
            for name, zone in sorted(ctx.zones.items())
        }
        start = case(
            starts, value=customers.c.timezone, else_=literal(_start(rule, ctx.shop), BigInteger)
        )
    due_epoch = start + spread_offset(rule.name, customers.c.id, spread)
    lateness = int(rule.lateness.total_seconds())
    return select(
        *due_columns(
            customers.c.id,
            literal(rule.occurrence_key),
            _moment(due_epoch, ctx.dialect),
            _moment(due_epoch + lateness, ctx.dialect),
            no_order(),
        )
    ).where(
        *eligible(rule, ctx.end),
        *audience_extras(rule, ctx.shop, ctx.dialect),
        due_epoch >= literal(math.ceil(ctx.start.timestamp()), BigInteger),
        due_epoch <= literal(math.floor(ctx.end.timestamp()), BigInteger),
    )


def audience_extras(
    rule: AnnouncementRule, shop: ZoneInfo, dialect: str
) -> list[ColumnElement[bool]]:
    """What an announcement's audience adds to every rule's: cities, last order dates (days
    in the shop's zone) and the customers file."""
    audience: AnnouncementAudience = rule.audience
    conditions: list[ColumnElement[bool]] = []
    if audience.cities:
        wanted = sorted({city.strip().casefold() for city in audience.cities})
        conditions.append(func.lower(func.trim(customers.c.city)).in_(wanted))
    if audience.last_order_before:
        conditions.append(customers.c.last_order_at < _day(audience.last_order_before, shop))
    if audience.last_order_after:
        conditions.append(customers.c.last_order_at >= _day(audience.last_order_after, shop))
    if audience.customers_file:
        ids, phones = rule.listed
        conditions.append(
            or_(
                customers.c.external_id.in_(json_values(sorted(ids), dialect)),
                customers.c.phone.in_(json_values(sorted(phones), dialect)),
            )
        )
    return conditions


def spread_offset(rule_name: str, customer_id: Any, spread: int) -> Any:
    """Seconds after `at` that the customer's message is due: in [0, spread), stable per
    (rule, customer), evenly spread; integer arithmetic, the same in SQL and in Python."""
    if spread <= 0:
        return 0 if isinstance(customer_id, int) else literal(0, Integer)
    a = 1 + zlib.crc32(f"spread-a:{rule_name}".encode()) % (_PRIME - 1)
    b = zlib.crc32(f"spread-b:{rule_name}".encode()) % _PRIME
    if isinstance(customer_id, int):
        return ((a * customer_id + b) % _PRIME) % spread
    scaled = sa_cast(customer_id, BigInteger) * literal(a, BigInteger) + literal(b, BigInteger)
    return (scaled % _PRIME) % spread


def _start(rule: AnnouncementRule, zone: ZoneInfo) -> int:
    """`at` in `zone`, in Unix seconds."""
    return int(rule.local_at.replace(tzinfo=zone).timestamp())


def _day(value: str, shop: ZoneInfo) -> ColumnElement[datetime]:
    day = datetime.strptime(value.strip(), "%Y-%m-%d").replace(tzinfo=shop)
    return instant(day.astimezone(UTC))


def _moment(epoch: Any, dialect: str) -> ColumnElement[datetime]:
    """The UTC instant of `epoch` (Unix seconds) in the ledger's datetime format."""
    if dialect == "sqlite":
        text = func.datetime(epoch, "unixepoch").concat(".000000")
        return type_coerce(text, UTCDateTime())
    return type_coerce(func.timezone("UTC", func.to_timestamp(epoch)), UTCDateTime())


def json_values(values: list[str], dialect: str) -> Select[Any]:
    """The values as one bound JSON array expanded by the database: a file of any length
    is a single parameter, never thousands."""
    if dialect == "sqlite":
        rows = func.json_each(literal(json.dumps(values))).table_valued("value")
    else:
        array = sa_cast(literal(json.dumps(values)), JSON)
        rows = func.json_array_elements_text(array).table_valued("value")
    return select(rows.c.value)
