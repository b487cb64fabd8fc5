"""Rules in, ledger rows out: every due occurrence becomes one `messages` row, exactly once.

Each rule's due occurrences are found by SELECTs (see `campaigner.rules.triggers`) and
written by INSERT … SELECT … ON CONFLICT DO NOTHING on the ledger's unique key, so re-runs,
overlapping ticks and racing planners can never create a second row. Nothing here loops over
customers in Python.

Each rule plans in its own savepoint: a rule whose query fails (a database limit, a value
the database refuses) is reported with its error and rolled back alone; the other rules'
rows are kept.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    Table,
    case,
    exists,
    func,
    literal,
    select,
    text,
)
from sqlalchemy import cast as sa_cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from campaigner.announcements import gate
from campaigner.clock import Clock
from campaigner.config import Settings
from campaigner.db.models import Customer, Message, MessageStatus
from campaigner.db.roomy import roomy
from campaigner.errors import one_line
from campaigner.rules.models import AnnouncementRule, Rule
from campaigner.rules.triggers import DueContext, compile_due
from campaigner.rules.triggers.common import instant
from campaigner.segments.membership import segment_of
from campaigner.timezones import zone_or

messages = cast(Table, Message.__table__)
customers = cast(Table, Customer.__table__)
_HASH_PRIME = 2_147_483_647  # 2**31 - 1: customer id × multiplier stays inside 64 bits
_HOLDOUT_BUCKETS = 10_000  # holdout_percent has a resolution of 0.01 %
CHECK_WINDOW = timedelta(days=2)


@dataclass
class RulePlan:
    planned: int = 0
    held_out: int = 0
    locked: bool = False  # another planner was planning this rule; it was skipped
    error: str | None = None  # why this rule planned nothing (one line)
    skipped_until: datetime | None = None  # it failed before and waits for a retry
    awaiting_approval: bool = False  # an announcement nobody approved yet: nothing queued


@dataclass
class PlanReport:
    rules: dict[str, RulePlan] = field(default_factory=dict)
    cancelled: int = 0  # queued rows of withdrawn announcements cancelled in this pass

    @property
    def planned(self) -> int:
        return sum(plan.planned for plan in self.rules.values())

    @property
    def held_out(self) -> int:
        return sum(plan.held_out for plan in self.rules.values())

    @property
    def errors(self) -> dict[str, str]:
        """Rules that planned nothing because of an error, and the error."""
        return {name: plan.error for name, plan in self.rules.items() if plan.error}


def plan(session: Session, rules: Iterable[Rule], clock: Clock, settings: Settings) -> PlanReport:
    """Insert every occurrence due in [now - max_lateness, now] for each enabled rule.

    The caller commits. On PostgreSQL each rule is guarded by a transaction-level advisory
    lock: a rule another planner is busy with is skipped (and reported as `locked`). A rule
    that fails is rolled back alone and reported with its `error`; a database that stopped
    answering fails the whole pass.
    """
    now = clock.now()
    dialect = session.get_bind().dialect.name
    zones = customer_zones(session, settings)
    shop = ZoneInfo(settings.customers.timezone)
    report = PlanReport()
    for rule in rules:
        if not rule.enabled:
            continue
        result = report.rules[rule.name] = RulePlan()
        try:
            with session.begin_nested():
                if dialect == "postgresql" and not _try_lock(session, rule.name):
                    result.locked = True
                    continue
                ctx = DueContext(
                    now - rule.lateness,
                    now,
                    zones,
                    dialect,
                    shop,
                    occasions=settings.occasions.overrides,
                )
                if isinstance(rule, AnnouncementRule):
                    # All of it at once, each row waiting for its own time: see `gate`.
                    if not gate.to_queue(session, rule):
                        result.awaiting_approval = not gate.is_approved(session, rule)
                        continue
                    ctx = replace(ctx, end=now + gate.HORIZON)
                for statement in _inserts(rule, ctx, now):
                    with roomy(
                        session,
                        sqlite_cache_kib=gate.QUEUE_CACHE_KIB,
                        wanted=isinstance(rule, AnnouncementRule),
                    ):
                        written = cast("CursorResult[Any]", session.execute(statement))
                    if _counted(rule, dialect):
                        result.planned += written.rowcount
                        continue
                    for (status,) in written:
                        if status == MessageStatus.HELD_OUT:
                            result.held_out += 1
                        else:
                            result.planned += 1
                if isinstance(rule, AnnouncementRule):
                    gate.queued(session, rule, now)
        except Exception as exc:
            if not _rule_at_fault(session, exc):
                raise
            report.rules[rule.name] = RulePlan(error=one_line(exc))
    return report


def check_plan(session: Session, rule: Rule, clock: Clock, settings: Settings) -> str | None:
    """Why `rule`'s planning statements fail on this database now, or None when they run.

    The planner's own INSERT … SELECT, limited to zero rows: the database compiles and checks
    it (types, its limits, every value bound), nothing is written. So that date-based rules
    build their statements even in an empty shop or at an hour with nothing due, the check
    looks at least two days back and in the shop's time zone too. The caller rolls back.
    """
    dialect = session.get_bind().dialect.name
    now = clock.now()
    try:
        with session.begin_nested():
            zones = customer_zones(session, settings)
            zones.setdefault(settings.customers.timezone, ZoneInfo(settings.customers.timezone))
            start = now - max(rule.lateness, CHECK_WINDOW)
            shop = ZoneInfo(settings.customers.timezone)
            ctx = DueContext(
                start=start,
                end=now,
                zones=zones,
                dialect=dialect,
                shop=shop,
                occasions=settings.occasions.overrides,
            )
            for statement in _inserts(rule, ctx, now, rows=0):
                session.execute(statement)
    except Exception as exc:
        if not _rule_at_fault(session, exc):
            raise
        return one_line(exc)
    return None


# Errors that say the database itself cannot take writes now, whatever the rule.
_DATABASE_WIDE = ("readonly", "read-only", "disk", "database is locked", "no space")


def _rule_at_fault(session: Session, exc: Exception) -> bool:
    """Whether a failure belongs to the rule rather than to the database or the connection.

    The database must still answer in the same transaction, and the error must not be one
    of those that fail every write (a read-only or full database): those fail the whole
    pass, so that they are retried and reported as an outage instead of blamed on rules.
    """
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return False
        if any(part in str(exc.orig).lower() for part in _DATABASE_WIDE):
            return False
    try:
        session.execute(select(literal(1)))
    except DBAPIError:
        return False
    return True


def count_due(
    session: Session, rule: Rule, start: datetime, end: datetime, settings: Settings
) -> int:
    """How many occurrences of `rule` fall due in [start, end] and are not in the ledger yet."""
    dialect = session.get_bind().dialect.name
    shop = ZoneInfo(settings.customers.timezone)
    zones = customer_zones(session, settings)
    ctx = DueContext(start, end, zones, dialect, shop, occasions=settings.occasions.overrides)
    total = 0
    for statement in compile_due(rule, ctx):
        due = statement.subquery("due")
        query = select(func.count()).select_from(due).where(_not_planned(rule, due))
        total += session.scalar(query) or 0
    return total


@dataclass(frozen=True)
class DueCount:
    """A rule's count of due occurrences, or why the database could not count them."""

    count: int = 0
    error: str | None = None


def count_due_each(
    session: Session,
    rules: Iterable[Rule],
    clock: Clock,
    settings: Settings,
    day: tuple[datetime, datetime],
) -> dict[str, DueCount]:
    """`count_due` in `day` for each enabled rule, and whether its planning query runs (see
    `check_plan`): a rule that would fail in the daemon (a database limit, a value the
    database refuses, a missing table, a locked file) is reported with its error as one line.
    Each rule runs in its own savepoint, so the rules after a failed one are still counted
    (on PostgreSQL a failed statement would otherwise abort the whole transaction)."""
    start, end = day
    counts = {}
    for rule in rules:
        if not rule.enabled:
            continue
        try:
            with session.begin_nested():
                count = count_due(session, rule, start, end, settings)
            error = check_plan(session, rule, clock, settings)
        except Exception as exc:  # whatever the cause, it is this rule's line
            count, error = 0, one_line(exc)
        counts[rule.name] = DueCount(count, error)
    return counts


@dataclass(frozen=True)
class Unplanned:
    """An occurrence that planning will queue but that is not in the ledger yet."""

    rule: str
    priority: int
    phone: str
    timezone: str
    due_at: datetime
    expires_at: datetime


def unplanned(
    session: Session,
    rules: Iterable[Rule],
    phones: Collection[str],
    zones: dict[str, ZoneInfo],
    now: datetime,
    until: datetime,
    occasions: Mapping[str, Mapping[int, date]] | None = None,
) -> list[Unplanned]:
    """What planning will queue for `phones` by `until` and has not yet.

    The window of each rule starts where the planner's does (`now - max_lateness`): an
    occurrence already due may simply wait for the next planning pass. Held-out customers
    are left out, as planning would hold them out. `zones` are the customers' zone names
    to look in (see `customer_zones`).
    """
    if not phones:
        return []
    dialect = session.get_bind().dialect.name
    found: list[Unplanned] = []
    for rule in rules:
        if isinstance(rule, AnnouncementRule):
            continue  # queued ahead, all at once, when approved: never "not planned yet"
        ctx = DueContext(
            start=now - rule.lateness,
            end=until,
            zones=zones,
            dialect=dialect,
            occasions=occasions or {},
        )
        for statement in compile_due(rule, ctx):
            found.extend(_unplanned(session, rule, statement, phones))
    return found


def _unplanned(
    session: Session, rule: Rule, statement: Any, phones: Collection[str]
) -> list[Unplanned]:
    due = statement.subquery("due")
    conditions = [due.c.phone.in_(list(phones)), _not_planned(rule, due)]
    if rule.holdout_percent > 0:
        bucket = holdout_bucket(rule.name, due.c.customer_id)
        conditions.append(bucket >= _holdout_threshold(rule))
    query = (
        select(
            literal(rule.name).label("rule"),
            literal(rule.priority).label("priority"),
            due.c.phone,
            customers.c.timezone,
            due.c.due_at,
            due.c.expires_at,
        )
        .join_from(due, customers, customers.c.id == due.c.customer_id)
        .where(*conditions)
    )
    return [Unplanned(*row) for row in session.execute(query)]


def day_bounds(clock: Clock, zone: str) -> tuple[datetime, datetime]:
    """Today in `zone`, from local midnight to just before the next one, in UTC."""
    tz = ZoneInfo(zone)
    today = clock.now().astimezone(tz).date()
    start = datetime.combine(today, time.min, tzinfo=tz)
    end = datetime.combine(today + timedelta(days=1), time.min, tzinfo=tz)
    return start.astimezone(UTC), (end - timedelta(microseconds=1)).astimezone(UTC)


def customer_zones(session: Session, settings: Settings) -> dict[str, ZoneInfo]:
    """The distinct time zones of customers; a name that is not a zone counts as the shop's."""
    return {
        name: zone_or(name, settings.customers.timezone)
        for name in session.scalars(_distinct_zones())
    }


def _distinct_zones() -> Select[Any]:
    """The customers' zone names, one index step each (a skip scan over the index on
    customers.timezone): a shop has a handful of zones and up to millions of customers, and
    every planning tick asks, so a SELECT DISTINCT over the table was most of a pass."""
    timezone = customers.c.timezone
    zones = select(func.min(timezone).label("name")).cte("zones", recursive=True)
    following = select(func.min(timezone)).where(timezone > zones.c.name).scalar_subquery()
    zones = zones.union_all(select(following).where(zones.c.name.is_not(None)))
    return select(zones.c.name).where(zones.c.name.is_not(None))


def holdout_bucket(rule_name: str, customer_id: Any) -> Any:
    """A stable pseudo-random bucket in [0, 10000) per (rule, customer).

    A universal hash ((a·id + b) mod p) with a and b derived from the rule's name, so each rule
    holds out its own group, and the same customer always lands in the same bucket. Plain
    integer arithmetic: identical on SQLite and PostgreSQL (and in Python, for tests).
    """
    a, b = _hash_params(rule_name)
    if isinstance(customer_id, int):
        return ((a * customer_id + b) % _HASH_PRIME) % _HOLDOUT_BUCKETS
    scaled = sa_cast(customer_id, BigInteger) * literal(a, BigInteger) + literal(b, BigInteger)
    return (scaled % _HASH_PRIME) % _HOLDOUT_BUCKETS


def is_held_out(rule: Rule, customer_id: int) -> bool:
    return bool(holdout_bucket(rule.name, customer_id) < _holdout_threshold(rule))


def _holdout_threshold(rule: Rule) -> int:
    return round(rule.holdout_percent * _HOLDOUT_BUCKETS / 100)


def _hash_params(rule_name: str) -> tuple[int, int]:
    a = 1 + zlib.crc32(f"holdout-a:{rule_name}".encode()) % (_HASH_PRIME - 1)
    b = zlib.crc32(f"holdout-b:{rule_name}".encode()) % _HASH_PRIME
    return a, b


def _not_planned(rule: Rule, due: Any) -> ColumnElement[bool]:
    """The due occurrence has no ledger row yet (whatever its status)."""
    return ~exists().where(
        messages.c.rule == rule.name,
        messages.c.customer_id == due.c.customer_id,
        messages.c.occurrence_key == due.c.occurrence_key,
    )


def _try_lock(session: Session, rule_name: str) -> bool:
    key = zlib.crc32(f"campaigner.plan:{rule_name}".encode())
    return bool(session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key}))


def _inserts(rule: Rule, ctx: DueContext, now: datetime, rows: int | None = None) -> list[Any]:
    """The rule's INSERT … SELECT statements for the due window; `rows` limits each SELECT
    (0 for a dry run)."""
    return [_insert(rule, due, now, ctx.dialect, rows) for due in compile_due(rule, ctx)]


def _insert(rule: Rule, query: Select[Any], now: datetime, dialect: str, limit: int | None) -> Any:
    due = query.subquery("due")
    status: ColumnElement[str] = literal(MessageStatus.QUEUED.value)
    if rule.holdout_percent > 0:
        status = case(
            (
                holdout_bucket(rule.name, due.c.customer_id) < _holdout_threshold(rule),
                literal(MessageStatus.HELD_OUT.value),
            ),
            else_=literal(MessageStatus.QUEUED.value),
        )
    rows = select(
        literal(rule.name),
        due.c.customer_id,
        due.c.occurrence_key,
        status,
        literal(rule.priority),
        due.c.phone,
        due.c.order_id,
        due.c.due_at,
        due.c.due_at,
        due.c.expires_at,
        segment_of(due.c.customer_id),
        instant(now),
        instant(now),
    ).where(due.c.customer_id.is_not(None))  # SQLite needs a WHERE before ON CONFLICT
    if limit is not None:
        rows = rows.limit(limit)
    columns = [
        "rule",
        "customer_id",
        "occurrence_key",
        "status",
        "priority",
        "phone",
        "order_id",
        "due_at",
        "scheduled_for",
        "expires_at",
        "customer_segment",
        "created_at",
        "updated_at",
    ]
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(messages)
    statement = insert.from_select(columns, rows).on_conflict_do_nothing(
        index_elements=["rule", "customer_id", "occurrence_key"]
    )
    return statement if _counted(rule, dialect) else statement.returning(messages.c.status)


def _counted(rule: Rule, dialect: str) -> bool:
    """Whether an insert's rows are counted rather than returned: on SQLite, when all are
    `queued` (no holdout), so that a million rows need not come back to Python. (psycopg
    gives no row count for these statements.)"""
    return rule.holdout_percent == 0 and dialect == "sqlite"
