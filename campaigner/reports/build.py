"""Build a report from the ledger, orders, coupons and NPS replies, counting in SQL.

A ledger row belongs to the period of its due time (held-out rows have nothing else), and
dates are UTC days. Every number is a GROUP BY: the ledger may hold millions of rows. Money is
net of refunds and grouped by currency (an order without one is in `customers.currency`),
never added across currencies.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    distinct,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from campaigner.clock import Clock
from campaigner.config import ReportSettings, Settings
from campaigner.db.models import Coupon, Customer, Message, MessageStatus, NpsResponse, Order
from campaigner.products.bought import ProductChoice, order_contains
from campaigner.reports.model import (
    CENT,
    UNRECORDED,
    BusinessKpis,
    Converted,
    DailySends,
    Money,
    NpsSummary,
    NpsWeek,
    Referrals,
    Report,
    Revenue,
    RuleReport,
    SegmentResult,
    Uplift,
)
from campaigner.reports.sections import Section, run_sections
from campaigner.reports.sql import day_of, days_between, unindexed, week_of
from campaigner.segments.membership import with_segment
from campaigner.segments.rfm_map import NO_SEGMENT, SEGMENTS

DEFAULT_ATTRIBUTION_DAYS = 7
# Accepted by the gateway: the customer was (or may have been) messaged.
ACCEPTED = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.UNDELIVERED)

messages = Message.__table__
orders = Order.__table__
coupons = Coupon.__table__
customers = Customer.__table__
nps = NpsResponse.__table__

PAID = and_(orders.c.status == "paid", orders.c.paid_at.is_not(None))
NET_TOTAL = orders.c.total - orders.c.refunded  # revenue: what the shop kept


def build_report(
    session: Session,
    *,
    since: date | None,
    until: date | None,
    rule: str | None,
    attribution_days: Mapping[str, int],
    settings: Settings,
    clock: Clock,
    churn_days: int | None = None,
    win_back_rules: Collection[str] = ("win_back",),
    product_goals: Mapping[str, ProductChoice] | None = None,
    helper: Session | None = None,
) -> Report:
    """Everything `campaigner report` shows, for ledger rows due in [since, until].

    `attribution_days` gives each rule's window (rules missing from it get 7 days);
    `win_back_rules` names the rules whose recipients count for the win-back recovery rate;
    `product_goals` what a product rule's customers should buy (cross_sell: its suggestion,
    replenish: its products), counted as `bought_it`. `helper`, a second session at the same
    snapshot (`campaigner.db.snapshot.read_only_pair`), takes the report's independent
    queries in turn with `session`, from a thread: the conversion join and the ledger pass,
    each over a second's work on a 1M-row ledger, run at the same time.
    """
    start = _midnight(since) if since else None
    end = _midnight(until + timedelta(days=1)) if until else clock.now()
    churn = churn_days if churn_days is not None else settings.reports.churn_days
    in_period = _ledger_period(start, end, rule)

    report = Report(generated_at=clock.now(), since=since, until=until, rule=rule, churn_days=churn)
    currency = settings.customers.currency
    target = settings.reports.convert_to or settings.pricing.currency
    window = _attribution_window(attribution_days)
    goals = product_goals or {}
    # Largest first (the order on SQLite; PostgreSQL's differs less): see sections.py.
    sections: dict[str, Section] = {
        "results": lambda s: _results(s, in_period, start, window, currency),
        "ledger": lambda s: _ledger_counts(s, in_period, settings),
        "shop": lambda s: _shop_kpis(s, end, churn, currency),
        "win_back": lambda s: _win_back(s, start, end, win_back_rules),
        "referrals": lambda s: _referrals(s, start, end),
        "coupons": lambda s: _coupons(s, in_period),
        "bought_it": lambda s: _bought_it(s, in_period, window, goals),
        "nps": lambda s: _nps(s, start, end, rule),
        "segment_sizes": _segment_sizes,
    }
    done = run_sections([session] if helper is None else [session, helper], sections)
    ledger: _Ledger = done["ledger"]
    by_rule = ledger.by_rule
    _add_results(ledger, done["results"], settings.reports.min_group_size)
    for name, count in done["coupons"].items():
        by_rule[name].coupons_redeemed = count
    for name, count in done["bought_it"].items():
        if name in by_rule:
            by_rule[name].bought_it = count
    for stats in by_rule.values():
        stats.converted_revenue = _converted(stats.revenue, settings.reports, target)
    report.rules = [by_rule[name] for name in sorted(by_rule)]
    report.daily_sends = ledger.daily_sends
    report.kpis = done["shop"]
    report.kpis.win_back_recipients, report.kpis.win_back_recovered = done["win_back"]
    report.kpis.referrals = done["referrals"]
    report.kpis.converted_revenue = _converted(
        report.kpis.revenue, settings.reports, target, report.kpis.buyers
    )
    report.nps, report.nps_weeks = done["nps"]
    report.segment_sizes = done["segment_sizes"]
    return report


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _ledger_period(
    start: datetime | None, end: datetime, rule: str | None
) -> list[ColumnElement[bool]]:
    conditions = [messages.c.due_at < end]
    if start is not None:
        conditions.append(messages.c.due_at >= start)
    if rule is not None:
        conditions.append(messages.c.rule == rule)
    return conditions


@dataclass
class _Ledger:
    """What one pass over the period's ledger rows counts."""

    by_rule: dict[str, RuleReport]
    daily_sends: list[DailySends]
    messaged: dict[str, int]  # accepted rows with a send time: the messaged group
    held_out: dict[str, int]
    messaged_by_segment: dict[str, dict[str, int]]  # rule: segment kept on the row: messaged


def _ledger_counts(
    session: Session, in_period: list[ColumnElement[bool]], settings: Settings
) -> _Ledger:
    """Statuses, reasons, segments and sends per day, and the messaged group per value
    segment, from one scan of the period's rows grouped on a few small keys (a few thousand
    groups, whatever the size of the ledger)."""
    day = day_of(messages.c.sent_at)
    keys = (
        unindexed(messages.c.rule).label("rule"),
        messages.c.status,
        messages.c.reason,
        messages.c.encoding,
        day.label("day"),
        func.coalesce(messages.c.customer_segment, UNRECORDED).label("segment"),
    )
    query = (
        select(
            *keys,
            func.count().label("rows"),
            func.sum(func.coalesce(messages.c.segments, 1)).label("segments"),
        )
        .where(*in_period)
        .group_by(*keys)
    )
    prices = {
        "gsm7": Decimal(str(settings.pricing.gsm7)),
        "ucs2": Decimal(str(settings.pricing.ucs2)),
    }
    currency = settings.pricing.currency
    by_rule: dict[str, RuleReport] = {}
    daily: dict[tuple[date, str], int] = {}
    messaged: dict[str, int] = {}
    held_out: dict[str, int] = {}
    by_segment: dict[str, dict[str, int]] = {}
    for row in session.execute(query):
        stats = by_rule.setdefault(
            row.rule, RuleReport(rule=row.rule, cost=Money(Decimal(0), currency))
        )
        count = int(row.rows)
        stats.planned += count
        status = row.status
        if status in ACCEPTED:
            stats.sent += count
            segments = int(row.segments)
            stats.segments += segments
            price = prices.get((row.encoding or "").lower(), prices["ucs2"])
            stats.cost = Money(stats.cost.amount + price * segments, currency)
            if row.day is not None:
                key = (_as_date(row.day), row.rule)
                daily[key] = daily.get(key, 0) + count
                messaged[row.rule] = messaged.get(row.rule, 0) + count
                segments_of_rule = by_segment.setdefault(row.rule, {})
                segments_of_rule[row.segment] = segments_of_rule.get(row.segment, 0) + count
        if status == MessageStatus.DELIVERED:
            stats.delivered += count
        elif status == MessageStatus.UNDELIVERED:
            stats.undelivered += count
        elif status == MessageStatus.FAILED:
            stats.failed += count
            _add(stats.failed_by_reason, row.reason, count)
        elif status == MessageStatus.SKIPPED:
            stats.skipped += count
            _add(stats.skipped_by_reason, row.reason, count)
        elif status in _SIMPLE:
            setattr(stats, _SIMPLE[status], getattr(stats, _SIMPLE[status]) + count)
            if status == MessageStatus.HELD_OUT:
                held_out[row.rule] = held_out.get(row.rule, 0) + count
    for stats in by_rule.values():
        stats.failed_by_reason = dict(sorted(stats.failed_by_reason.items()))
        stats.skipped_by_reason = dict(sorted(stats.skipped_by_reason.items()))
    daily_sends = [DailySends(day, rule, sent) for (day, rule), sent in sorted(daily.items())]
    return _Ledger(by_rule, daily_sends, messaged, held_out, by_segment)


_SIMPLE = {
    MessageStatus.QUEUED: "queued",
    MessageStatus.HELD_OUT: "held_out",
    MessageStatus.SENDING: "sending",
    MessageStatus.EXPIRED: "expired",
    MessageStatus.CANCELLED: "cancelled",
    MessageStatus.UNKNOWN: "unknown",
}


def _add(counts: dict[str, int], reason: str | None, count: int) -> None:
    key = reason or "unspecified"
    counts[key] = counts.get(key, 0) + count


def _attribution_window(attribution_days: Mapping[str, int]) -> ColumnElement[Any]:
    """Each rule's attribution window in days, as an SQL expression over the message's rule."""
    if not attribution_days:
        return literal(DEFAULT_ATTRIBUTION_DAYS)
    return case(
        {name: days for name, days in attribution_days.items()},
        value=messages.c.rule,
        else_=DEFAULT_ATTRIBUTION_DAYS,
    )


def _reference() -> ColumnElement[Any]:
    """When the message was sent, or, for the held-out group, would have been."""
    held = messages.c.status == MessageStatus.HELD_OUT
    return case((held, messages.c.due_at), else_=messages.c.sent_at)


def _attributed(window: ColumnElement[Any]) -> ColumnElement[bool]:
    """A paid order of the message's customer within the window after the message (or, for
    the held-out group, after the moment it would have been sent)."""
    reference = _reference()
    return and_(
        # The ledger drives the join, probing the orders' (customer_id, paid_at) index once
        # per message; walked the other way, every order fetched each of its customer's rows.
        orders.c.customer_id == unindexed(messages.c.customer_id),
        PAID,
        orders.c.paid_at > reference,
        days_between(orders.c.paid_at, reference) <= window,
    )


@dataclass
class _Results:
    """What the join of the period's ledger rows to the orders they converted counts."""

    conversions: dict[tuple[str, bool], int]  # (rule, held out): converted messages
    by_segment: dict[str, dict[str, int]]  # rule: segment: converted messages
    revenue: dict[str, dict[str, tuple[int, Decimal]]]  # rule: currency: (orders, amount)


def _results(
    session: Session,
    in_period: list[ColumnElement[bool]],
    start: datetime | None,
    window: ColumnElement[Any],
    default_currency: str,
) -> _Results:
    """Conversions of the messaged and held-out groups, per value segment, and the attributed
    revenue per currency, from one join of the period's ledger rows to the orders they
    converted (the orders' (customer_id, paid_at) index probed once per message). An inner
    join: only the message-order pairs that convert, about a tenth of the rows, are grouped
    (the groups' sizes come from the ledger pass). Each message is grouped once, with a
    count and a sum per currency, so the outer grouping counts messages without a DISTINCT;
    the segment is the one kept on the ledger row when the message was planned (rows planned
    before it was kept count as "unrecorded", never as today's segment). A message sent after
    the period began can only have converted a customer who paid after it began: the others
    are not looked up in the orders at all (a set of those customers is built once)."""
    currency = func.coalesce(func.nullif(orders.c.currency, ""), literal(default_currency))
    currencies = sorted(session.execute(select(currency).where(PAID).distinct()).scalars())
    held = messages.c.status == MessageStatus.HELD_OUT
    sent = and_(unindexed(messages.c.status).in_(ACCEPTED), messages.c.sent_at.is_not(None))
    per_currency = []
    for index, name in enumerate(currencies):
        mine = currency == name
        per_currency += [
            func.count(case((mine, orders.c.id))).label(f"orders_{index}"),
            func.sum(case((mine, NET_TOTAL))).label(f"amount_{index}"),
        ]
    per_message = (
        select(
            unindexed(messages.c.rule).label("rule"),
            case((held, 1), else_=0).label("held"),
            func.coalesce(messages.c.customer_segment, UNRECORDED).label("segment"),
            *per_currency,
        )
        .select_from(messages.join(orders, _attributed(window)))
        .where(*in_period, or_(held, sent), *_bought_since(start))
        .group_by(messages.c.id, messages.c.rule, messages.c.status, messages.c.customer_segment)
        .subquery("per_message")
    )
    sums = []
    for index in range(len(currencies)):
        sums += [
            func.sum(per_message.c[f"orders_{index}"]).label(f"orders_{index}"),
            func.sum(per_message.c[f"amount_{index}"]).label(f"amount_{index}"),
        ]
    keys = (per_message.c.rule, per_message.c.held, per_message.c.segment)
    totals = select(*keys, func.count().label("converted"), *sums).group_by(*keys)
    conversions: dict[tuple[str, bool], int] = {}
    by_segment: dict[str, dict[str, int]] = {}
    revenue: dict[str, dict[str, tuple[int, Decimal]]] = {}
    for row in session.execute(totals):
        group = (row.rule, bool(row.held))
        converted = int(row.converted or 0)
        conversions[group] = conversions.get(group, 0) + converted
        if row.held:
            continue
        by_segment.setdefault(row.rule, {})[row.segment] = converted
        for index, name in enumerate(currencies):
            count = int(getattr(row, f"orders_{index}") or 0)
            if not count:
                continue
            amount = Decimal(str(getattr(row, f"amount_{index}")))
            orders_before, amount_before = revenue.setdefault(row.rule, {}).get(
                name, (0, Decimal(0))
            )
            revenue[row.rule][name] = (orders_before + count, amount_before + amount)
    return _Results(conversions, by_segment, revenue)


def _bought_since(start: datetime | None) -> list[ColumnElement[bool]]:
    if start is None:
        return []
    since = aliased(orders)
    buyers = select(since.c.customer_id).where(since.c.status == "paid", since.c.paid_at > start)
    return [or_(_reference() <= start, unindexed(messages.c.customer_id).in_(buyers))]


def _add_results(ledger: _Ledger, results: _Results, min_group_size: int) -> None:
    conversions, by_segment, revenue = results.conversions, results.by_segment, results.revenue
    order = {name: index for index, name in enumerate((*SEGMENTS, NO_SEGMENT))}
    for name, stats in ledger.by_rule.items():
        stats.conversions = conversions.get((name, False), 0)
        stats.revenue = [
            Revenue(code, orders, amount.quantize(CENT))
            for code, (orders, amount) in sorted(revenue.get(name, {}).items())
        ]
        messaged = ledger.messaged_by_segment.get(name, {})
        converted = by_segment.get(name, {})
        stats.by_segment = [
            SegmentResult(segment, messaged[segment], converted.get(segment, 0))
            for segment in sorted(messaged, key=lambda s: (order.get(s, len(order)), s))
        ]
        if name not in ledger.held_out:
            continue
        stats.uplift = Uplift(
            messaged=ledger.messaged.get(name, 0),
            messaged_conversions=stats.conversions,
            held_out=ledger.held_out[name],
            held_out_conversions=conversions.get((name, True), 0),
            min_group_size=min_group_size,
        )


def _bought_it(
    session: Session,
    in_period: list[ColumnElement[bool]],
    window: ColumnElement[Any],
    goals: Mapping[str, ProductChoice],
) -> dict[str, int]:
    """Per product rule, the messaged customers with an attributed order holding its goal."""
    sent = and_(unindexed(messages.c.status).in_(ACCEPTED), messages.c.sent_at.is_not(None))
    bought: dict[str, int] = {}
    for name, goal in goals.items():
        count = session.scalar(
            select(func.count(distinct(messages.c.id)))
            .select_from(messages.join(orders, _attributed(window)))
            .where(*in_period, messages.c.rule == name, sent, order_contains(goal, orders.c.id))
        )
        bought[name] = int(count or 0)
    return bought


def _segment_sizes(session: Session) -> dict[str, int]:
    joined, segment = with_segment(customers, customers.c.id)
    query = select(segment, func.count()).select_from(joined).group_by(segment)
    sizes: dict[str, int] = {segment: count for segment, count in session.execute(query)}
    known = [*SEGMENTS, NO_SEGMENT]
    return {name: sizes.get(name, 0) for name in known} | {
        name: count for name, count in sorted(sizes.items()) if name not in known
    }


def _currency(default: str) -> ColumnElement[str]:
    return case((orders.c.currency == "", literal(default)), else_=orders.c.currency)


def _converted(
    revenue: list[Revenue], settings: ReportSettings, target: str, buyers: int = 0
) -> Converted | None:
    """The total in `target` at the configured rates; None without rates or revenue."""
    if not settings.exchange_rates or not revenue:
        return None
    rates = {**settings.exchange_rates, target: Decimal(1)}
    missing = tuple(item.currency for item in revenue if item.currency not in rates)
    if missing:
        return Converted(target, None, missing)
    amount = sum((item.amount * rates[item.currency] for item in revenue), Decimal(0))
    orders = sum(item.orders for item in revenue)
    return Converted(target, Revenue(target, orders, amount.quantize(CENT), buyers))


def _coupons(session: Session, in_period: list[ColumnElement[bool]]) -> dict[str, int]:
    rule = unindexed(messages.c.rule)  # from the redeemed coupons, not the ledger's rule index
    query = (
        select(rule, func.count(coupons.c.id))
        .select_from(coupons.join(messages, coupons.c.message_id == messages.c.id))
        .where(*in_period, coupons.c.redeemed_order_id.is_not(None))
        .group_by(rule)
    )
    return {name: int(count) for name, count in session.execute(query)}


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _shop_kpis(
    session: Session, end: datetime, churn_days: int, default_currency: str
) -> BusinessKpis:
    """Buyers, revenue, active, churned and repeat customers (the win-back and referral
    figures are sections of their own)."""
    kpis = BusinessKpis()
    cutoff = end - timedelta(days=churn_days)
    # One pass over the paid orders, grouped per customer and currency (the orders'
    # paid_at index would fetch every row from it: on SQLite it is written `+paid_at`).
    paid = (
        select(
            orders.c.customer_id,
            _currency(default_currency).label("currency"),
            NET_TOTAL.label("amount"),
            orders.c.paid_at,
        )
        .where(PAID, unindexed(orders.c.paid_at) < end)
        .subquery("paid")
    )
    per_customer = (
        select(
            paid.c.customer_id,
            paid.c.currency,
            func.count().label("orders"),
            func.sum(paid.c.amount).label("amount"),
            func.max(paid.c.paid_at).label("last_paid"),
        )
        .group_by(paid.c.customer_id, paid.c.currency)
        .cte("per_customer")
    )
    by_currency = select(
        per_customer.c.currency,
        func.count().label("buyers"),
        func.sum(per_customer.c.orders).label("orders"),
        func.sum(per_customer.c.amount).label("amount"),
        null().label("active"),
        null().label("repeat"),
    ).group_by(per_customer.c.currency)
    buyers = (
        select(
            per_customer.c.customer_id,
            func.sum(per_customer.c.orders).label("orders"),
            func.max(per_customer.c.last_paid).label("last_paid"),
        )
        .group_by(per_customer.c.customer_id)
        .subquery("buyers")
    )
    overall = select(
        null(),
        func.count(),
        null(),
        null(),
        func.coalesce(func.sum(case((buyers.c.last_paid >= cutoff, 1), else_=0)), 0),
        func.coalesce(func.sum(case((buyers.c.orders >= 2, 1), else_=0)), 0),
    )
    for row in session.execute(union_all(by_currency, overall)):
        if row.active is None:
            kpis.revenue.append(
                Revenue(
                    currency=row.currency,
                    orders=int(row.orders),
                    amount=Decimal(str(row.amount)).quantize(CENT),
                    buyers=int(row.buyers),
                )
            )
        else:
            kpis.buyers = int(row.buyers)
            kpis.active_customers = int(row.active)
            kpis.repeat_buyers = int(row.repeat)
    kpis.churned_customers = kpis.buyers - kpis.active_customers
    kpis.revenue.sort(key=lambda revenue: revenue.currency)
    return kpis


def _win_back(
    session: Session, start: datetime | None, end: datetime, win_back_rules: Collection[str]
) -> tuple[int, int]:
    """The win-back recipients of the period and how many of them bought again."""
    # One scan of the ledger: walking the rule or customer index would fetch each row from it.
    customer = unindexed(messages.c.customer_id)
    recipients = (
        select(customer.label("customer_id"), func.min(messages.c.sent_at).label("first_sent"))
        .where(
            *_ledger_period(start, end, None),
            unindexed(messages.c.rule).in_(list(win_back_rules)),
            unindexed(messages.c.status).in_(ACCEPTED),
            messages.c.sent_at.is_not(None),
        )
        .group_by(customer)
        .subquery()
    )
    bought_again = exists().where(
        orders.c.customer_id == recipients.c.customer_id,
        PAID,
        orders.c.paid_at > recipients.c.first_sent,
        orders.c.paid_at < end,
    )
    recovered = func.sum(case((bought_again, 1), else_=0))
    row = session.execute(select(func.count(), recovered).select_from(recipients)).one()
    return int(row[0]), int(row[1] or 0)


def _referrals(session: Session, start: datetime | None, end: datetime) -> list[Referrals]:
    """Referred customers whose first paid order falls in the period, by who referred them."""
    first = (
        select(orders.c.customer_id, func.min(orders.c.paid_at).label("first_paid"))
        .where(PAID)
        .group_by(orders.c.customer_id)
        .subquery()
    )
    referrer = aliased(customers)
    conditions = [first.c.first_paid < end]
    if start is not None:
        conditions.append(first.c.first_paid >= start)
    referred = func.count().label("referred")
    query = (
        select(referrer.c.id, referrer.c.first_name, referrer.c.last_name, referred)
        .select_from(
            customers.join(first, first.c.customer_id == customers.c.id).join(
                referrer, referrer.c.id == customers.c.referred_by_id
            )
        )
        .where(*conditions)
        .group_by(referrer.c.id, referrer.c.first_name, referrer.c.last_name)
        .order_by(referred.desc(), referrer.c.id)
    )
    return [
        Referrals(
            referrer_id=row.id,
            referrer_name=" ".join(p for p in (row.first_name, row.last_name) if p),
            referred=int(row.referred),
        )
        for row in session.execute(query)
    ]


def _nps(
    session: Session, start: datetime | None, end: datetime, rule: str | None
) -> tuple[NpsSummary, list[NpsWeek]]:
    conditions = [nps.c.received_at < end]
    if start is not None:
        conditions.append(nps.c.received_at >= start)
    if rule is not None:
        conditions.append(nps.c.rule == rule)
    buckets = (
        func.count().label("responses"),
        func.sum(case((nps.c.score >= 9, 1), else_=0)).label("promoters"),
        func.sum(case((nps.c.score.between(7, 8), 1), else_=0)).label("passives"),
        func.sum(case((nps.c.score <= 6, 1), else_=0)).label("detractors"),
    )
    total = _summary(session.execute(select(*buckets).where(*conditions)).one())
    week = week_of(nps.c.received_at)
    weekly = session.execute(
        select(week.label("week"), *buckets).where(*conditions).group_by(week).order_by(week)
    )
    return total, [NpsWeek(week=_as_date(row.week), summary=_summary(row)) for row in weekly]


def _summary(row: Any) -> NpsSummary:
    return NpsSummary(
        responses=int(row.responses),
        promoters=int(row.promoters or 0),
        passives=int(row.passives or 0),
        detractors=int(row.detractors or 0),
    )
