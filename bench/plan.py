"""Benchmark: one planning pass of the sample rules and one rule of each newer kind over a
large shop whose orders carry line items, against a naive baseline that loads customers,
orders, lines, stored dates and segment moves into Python and evaluates each rule per
customer.

Besides the sample rules, the pass plans a segment_change rule (loyal or champions to
at_risk), a Nowruz greeting (`occasion`, due tomorrow), a wedding anniversary
(`personal_date` from 300,000 stored dates), "a year with us" (`personal_date` on the first
order), an approved announcement to the customers whose last order fell in one week of last
June (`announcement`, at 10:00 today in each customer's zone, queued all at once as
announcements are, also where 10:00 is still to come), the winners of a prize draw drawn an
hour ago (`draw_winner`), a cross-sell and a replenishment with `days = "auto"`. Then, apart,
what is a mass insert rather than a lookup: one occasion due now for every customer (the day
a greeting goes to the whole shop), and a sale announced to the quarter of the shop whose
last order is over nine months old.

    .venv/bin/python bench/plan.py                    # 1,000,000 customers, 3,000,000 orders
    .venv/bin/python bench/plan.py --customers 100000 # a quicker run
    .venv/bin/python bench/plan.py --db /tmp/plan.db --skip-naive --repeat 5

The database is built in a child process, so the peak memory reported is the planner's own.
A database reused with --db has its ledger emptied first: every run plans from a clean ledger.
Both approaches evaluate the same rules (the enabled sample rules, as the product does, and
one of each newer kind) and must find the same due occurrences; the script checks that they
do and exits non-zero otherwise.
"""

from __future__ import annotations

import argparse
import itertools
import math
import multiprocessing
import random
import resource
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter
from sqlalchemy import Engine, select

from campaigner.calendars import birthday_in_year, jalali_month_day, month_day, year_of
from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.db import create_engine_for, session_factory, upgrade
from campaigner.db.models import (
    Customer,
    CustomerDate,
    Draw,
    DrawWinner,
    OptOut,
    Order,
    OrderItem,
    SegmentChange,
)
from campaigner.planner import PlanReport, plan
from campaigner.products.reorder import reorder_days
from campaigner.project import SAMPLES
from campaigner.rules.loader import load_rules
from campaigner.rules.models import (
    AnnouncementRule,
    BirthdayRule,
    CrossSellRule,
    DrawWinnerRule,
    OccasionRule,
    PersonalDateRule,
    PostPurchaseRule,
    ReferralRequestRule,
    ReplenishRule,
    Rule,
    SegmentChangeRule,
    WinBackRule,
)

NOW = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)  # 11:30 in Tehran
PRODUCTS = 200  # product n: id "n", SKU "SKUn", category "cat{n % 20}"
CATEGORIES = 20
PRODUCT_RULES: list[Rule] = [
    TypeAdapter(Rule).validate_python(rule)
    for rule in (
        {
            "name": "cross_sell",
            "trigger": "cross_sell",
            "template": "x.j2",
            "after": "7d",
            "bought": {"categories": ["cat3"]},
            "suggest": {"products": ["SKU70"]},
            "suggestion": "product 70",
        },
        {
            "name": "replenish",
            "trigger": "replenish",
            "template": "x.j2",
            "days": "auto",
            "bought": {"products": ["57"]},
        },
    )
]
ZONES = ["Asia/Tehran"] * 16 + ["Europe/Berlin", "America/New_York", "Asia/Dubai", "Europe/London"]
CHUNK = 100_000
DATED_SHARE = 0.3  # customers with a stored wedding anniversary
DATED_RULES: list[Rule] = [
    OccasionRule(trigger="occasion", name="nowruz", template="x", date="jalali:01-01"),
    PersonalDateRule(trigger="personal_date", name="anniversary", template="x", date="anniversary"),
    PersonalDateRule(
        trigger="personal_date", name="with_us", template="x", date="first_order", years=[1, 5]
    ),
    AnnouncementRule.model_validate(
        {
            "trigger": "announcement",
            "name": "june_buyers",
            "template": "x",
            "at": "2026-03-20T10:00",
            "approved": True,
            "audience": {"last_order_after": "2025-06-13", "last_order_before": "2025-06-20"},
        }
    ),
    DrawWinnerRule(trigger="draw_winner", name="draw_winners", template="x", draw="bench_draw"),
]
DRAWN_AT = NOW - timedelta(hours=1)
WINNERS = 25
# Due now in Tehran and Dubai (10:00 there has passed today), for every customer of theirs.
WHOLE_SHOP = OccasionRule(
    trigger="occasion", name="spring_sale", template="x", date="gregorian:03-20"
)
# Approved now for every customer whose last order is over nine months old: a quarter of the
# shop queued in one pass.
LAPSED = AnnouncementRule.model_validate(
    {
        "trigger": "announcement",
        "name": "lapsed_sale",
        "template": "x",
        "at": "2026-03-20T10:00",
        "approved": True,
        "audience": {"last_order_before": "2025-06-20"},
    }
)
APART: list[Rule] = [WHOLE_SHOP, LAPSED]


def stamp(moment: datetime) -> str:
    """How SQLAlchemy stores a UTC datetime in SQLite."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def build(path: Path, customers: int, orders_per_customer: int, seed: int) -> None:
    engine = create_engine_for(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    rng = random.Random(seed)
    first_day = date(1950, 1, 1)
    days = [first_day + timedelta(days=n) for n in range(365 * 55)]
    birth = [(d.isoformat(), month_day(d), jalali_month_day(d)) for d in days]
    created = stamp(NOW)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=OFF")  # a throw-away database: no journal while loading
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-400000")

    def customer_rows(start: int, stop: int) -> Iterator[tuple[object, ...]]:
        for n in range(start, stop):
            born = birth[rng.randrange(len(birth))] if rng.random() < 0.8 else (None, None, None)
            tags = rng.choice(["", "", ",vip,", ",newsletter,", ",newsletter,vip,"])
            yield (
                n, f"c{n}", f"Name{n}", "", f"+98912{n:07d}", born[0],
                "jalali" if rng.random() < 0.4 else "gregorian", rng.choice(ZONES),
                "fa", tags, rng.random() < 0.9, "", born[1], born[2], 0, 0, created, created,
            )  # fmt: skip

    def date_rows(start: int, stop: int) -> Iterator[tuple[object, ...]]:
        for n in range(start, stop):
            if rng.random() < DATED_SHARE:
                day = days[rng.randrange(365 * 40, len(days))]  # 1990 to 2004
                calendar = "jalali" if rng.random() < 0.5 else "gregorian"
                yield n, "anniversary", day.isoformat(), calendar, created

    for start in range(1, customers + 1, CHUNK):
        with db:
            db.executemany(
                "INSERT INTO customers (id, external_id, first_name, last_name, phone, birthday,"
                " calendar, timezone, locale, tags, marketing_consent, city, birth_md,"
                " birth_jalali_md, orders_count, total_spent, created_at, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                customer_rows(start, min(start + CHUNK, customers + 1)),
            )
    for start in range(1, customers + 1, CHUNK):
        with db:
            db.executemany(
                "INSERT INTO customer_dates (customer_id, name, date, calendar, updated_at)"
                " VALUES (?,?,?,?,?)",
                date_rows(start, min(start + CHUNK, customers + 1)),
            )
    span = int(timedelta(days=730).total_seconds())
    total_orders = customers * orders_per_customer

    def order_rows(start: int, stop: int) -> Iterator[tuple[object, ...]]:
        for n in range(start, stop):
            paid = NOW - timedelta(seconds=rng.randrange(span))
            status = "paid" if rng.random() < 0.95 else "refunded"
            yield (
                n, f"o{n}", rng.randrange(1, customers + 1), rng.randrange(10, 5000),
                "IRT", status, stamp(paid), created, created,
            )  # fmt: skip

    for start in range(1, total_orders + 1, CHUNK):
        with db:
            db.executemany(
                "INSERT INTO orders (id, external_id, customer_id, total, currency, status,"
                " paid_at, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                order_rows(start, min(start + CHUNK, total_orders + 1)),
            )
    line_ids = iter(range(1, 3 * total_orders))
    for start in range(1, total_orders + 1, CHUNK):
        lines, categories = [], []
        for order in range(start, min(start + CHUNK, total_orders + 1)):
            for line_no in range(1, 2 + (rng.random() < 0.5)):
                line, product = next(line_ids), rng.randrange(1, PRODUCTS + 1)
                category = f"cat{product % CATEGORIES}"
                lines.append(
                    (line, order, line_no, str(product), f"SKU{product}", f"Product {product}",
                     f",{category},", 1, 1000, 1000)
                )  # fmt: skip
                categories.append((line, line, category))
        with db:
            db.executemany(
                "INSERT INTO order_items (id, order_id, line_no, product_id, sku, name,"
                " categories, quantity, unit_price, line_total) VALUES (?,?,?,?,?,?,?,?,?,?)",
                lines,
            )
            db.executemany(
                "INSERT INTO order_item_categories (id, item_id, category) VALUES (?,?,?)",
                categories,
            )
    with db:
        db.execute(
            "INSERT INTO opt_outs (phone, source, reason, created_at)"
            " SELECT phone, 'bench', '', ? FROM customers WHERE id % 97 = 0",
            (created,),
        )
        # The derived columns, in SQL: order sequence numbers, then per-customer statistics.
        db.execute("CREATE TEMP TABLE seq (id INTEGER PRIMARY KEY, n INTEGER)")
        db.execute(
            "INSERT INTO seq SELECT id, row_number() OVER (PARTITION BY customer_id"
            " ORDER BY paid_at, id) FROM orders WHERE status = 'paid'"
        )
        db.execute("UPDATE orders SET sequence = seq.n FROM seq WHERE orders.id = seq.id")
        db.execute(
            "CREATE TEMP TABLE stats (customer_id INTEGER PRIMARY KEY, c INTEGER, s NUMERIC,"
            " f TEXT, m INTEGER)"
        )
        db.execute(
            "INSERT INTO stats SELECT customer_id, count(*), sum(total), min(paid_at),"
            " max(sequence) FROM orders WHERE status = 'paid' GROUP BY customer_id"
        )
        db.execute(
            "UPDATE customers SET orders_count = stats.c, total_spent = stats.s,"
            " first_order_at = stats.f FROM stats WHERE customers.id = stats.customer_id"
        )
        db.execute(
            "UPDATE customers SET last_order_id = o.id, last_order_at = o.paid_at"
            " FROM stats JOIN orders AS o ON o.customer_id = stats.customer_id"
            " AND o.sequence = stats.m WHERE customers.id = stats.customer_id"
        )
        # Segment moves as the recomputation records them: one customer in 50 slipped from
        # loyal or champions to at_risk in the last three days, one in 77 moved elsewhere.
        db.execute(
            "INSERT INTO segment_changes (customer_id, old, new, changed_at)"
            " SELECT id, CASE WHEN id % 3 = 0 THEN 'champions' ELSE 'loyal' END, 'at_risk',"
            " strftime('%Y-%m-%d %H:%M:%S.000000', ?, '-' || (id % 72) || ' hours')"
            " FROM customers WHERE id % 50 = 0",
            (stamp(NOW),),
        )
        db.execute(
            "INSERT INTO segment_changes (customer_id, old, new, changed_at)"
            " SELECT id, 'new', 'promising', ? FROM customers WHERE id % 77 = 0",
            (stamp(NOW),),
        )
    db.execute("ANALYZE")
    db.close()


SLIPPING = SegmentChangeRule.model_validate(
    {
        "name": "slipping_away",
        "trigger": "segment_change",
        "template": "slipping_away.j2",
        "from": ["loyal", "champions"],
        "to": ["at_risk"],
    }
)


def clear_ledger(path: Path) -> int:
    """Empty the ledger a previous run planned, so the pass is timed doing its work again."""
    db = sqlite3.connect(path)
    with db:
        cleared = db.execute("DELETE FROM messages").rowcount
    db.close()
    return cleared


def draw(path: Path, customers: int) -> None:
    """The prize draw `bench_draw`, drawn an hour before the pass: WINNERS customers spread
    over the shop (made again on every run, so a kept database from before it works too)."""
    db = sqlite3.connect(path)
    with db:
        db.execute(
            "DELETE FROM draw_winners WHERE draw_id IN"
            " (SELECT id FROM draws WHERE name = 'bench_draw')"
        )
        db.execute("DELETE FROM draws WHERE name = 'bench_draw'")
        draw_id = db.execute(
            "INSERT INTO draws (name, source, seed, candidates, candidates_sha256, drawn_by,"
            " drawn_at) VALUES ('bench_draw', 'bench', 'seed', ?, '', 'bench', ?)",
            (customers, stamp(DRAWN_AT)),
        ).lastrowid
        db.executemany(
            "INSERT INTO draw_winners (draw_id, place, customer_id, external_id) VALUES (?,?,?,?)",
            [
                (draw_id, place, n, f"c{n}")
                for place, n in enumerate(range(7, customers + 1, customers // WINNERS), 1)
            ][:WINNERS],
        )
    db.close()


def naive(url: str, rules: list[Rule], shop: ZoneInfo) -> Counter[str]:
    """The obvious way: every customer, order and line in Python, every rule checked per
    customer."""
    engine = create_engine_for(url)
    with session_factory(engine)() as session:
        opted_out = set(session.scalars(select(OptOut.phone)))
        people = session.execute(
            select(
                Customer.id,
                Customer.phone,
                Customer.marketing_consent,
                Customer.phone_invalid_at,
                Customer.timezone,
                Customer.calendar,
                Customer.birthday,
                Customer.last_order_at,
            )
        ).all()
        winners = set(
            session.scalars(
                select(DrawWinner.customer_id)
                .join(Draw, Draw.id == DrawWinner.draw_id)
                .where(Draw.name == "bench_draw")
            )
        )
        own: dict[int, tuple[date, str]] = {
            customer_id: (day, calendar)
            for customer_id, day, calendar in session.execute(
                select(CustomerDate.customer_id, CustomerDate.date, CustomerDate.calendar)
            )
        }
        history: dict[int, list[datetime]] = {}
        bought: dict[int, list[tuple[datetime, int]]] = {}
        paid = select(Order.customer_id, Order.paid_at, Order.id).where(Order.status == "paid")
        for customer_id, paid_at, order_id in session.execute(
            paid.order_by(Order.paid_at, Order.id)
        ):
            assert paid_at is not None  # build() stamps every paid order
            history.setdefault(customer_id, []).append(paid_at)
            bought.setdefault(customer_id, []).append((paid_at, order_id))
        # Every line read; only the products the rules name are kept (memory).
        named = {
            p
            for rule in PRODUCT_RULES
            for field in ("bought", "suggest")
            if hasattr(rule, field)
            for p in _products(rule, field)
        }
        lines: dict[int, set[str]] = {}
        for order_id, product in session.execute(
            select(OrderItem.order_id, OrderItem.product_id)
        ).yield_per(100_000):
            if product in named:
                lines.setdefault(order_id, set()).add(product)
        moves: dict[int, list[tuple[str, str, datetime]]] = {}
        for customer_id, old, new, changed_at in session.execute(
            select(SegmentChange.customer_id, SegmentChange.old, SegmentChange.new,
                   SegmentChange.changed_at)
        ):  # fmt: skip
            moves.setdefault(customer_id, []).append((old, new, changed_at))
    engine.dispose()
    reorder = _median_reorder_days(bought, lines)
    due: Counter[str] = Counter()
    for cid, phone, consent, invalid, zone_name, calendar, birthday, last_order in people:
        if not phone or not consent or invalid or phone in opted_out:
            continue
        zone = ZoneInfo(zone_name)
        paid_orders = history.get(cid, [])
        for rule in rules:
            start = NOW - rule.lateness
            if isinstance(rule, PostPurchaseRule):
                due[rule.name] += sum(start <= p + rule.delay_td <= NOW for p in paid_orders)
            elif isinstance(rule, ReferralRequestRule):
                if len(paid_orders) >= rule.after_orders:
                    moment = paid_orders[rule.after_orders - 1] + rule.delay_td
                    due[rule.name] += start <= moment <= NOW
            elif isinstance(rule, WinBackRule):
                if len(paid_orders) >= rule.min_orders:
                    ready = (paid_orders[-1] + timedelta(days=rule.inactive_days)).astimezone(zone)
                    send = datetime.combine(ready.date(), rule.send_time, tzinfo=zone)
                    if send < ready:
                        send = datetime.combine(
                            ready.date() + timedelta(days=1), rule.send_time, tzinfo=zone
                        )
                    due[rule.name] += start <= send <= NOW
            elif isinstance(rule, SegmentChangeRule):
                due[rule.name] += any(
                    new in rule.to and (not rule.from_ or old in rule.from_) and start <= at <= NOW
                    for old, new, at in moves.get(cid, [])
                )
            elif isinstance(rule, OccasionRule):
                today = NOW.astimezone(zone).date()
                for day in (today - timedelta(days=1), today):
                    send = datetime.combine(day, rule.send_time, tzinfo=zone)
                    party = day + timedelta(days=rule.days_before)
                    if start <= send <= NOW and rule.occasion_date.between(party, party):
                        due[rule.name] += 1
            elif isinstance(rule, PersonalDateRule):
                if rule.date == "first_order":
                    first = paid_orders[0].astimezone(zone).date() if paid_orders else None
                    original = None if first is None else (first, calendar)
                else:
                    original = own.get(cid)
                if original is None:
                    continue
                used = original[1] if rule.calendar == "customer" else rule.calendar
                used = "jalali" if used == "jalali" else "gregorian"
                today = NOW.astimezone(zone).date()
                for day in (today - timedelta(days=1), today):
                    send = datetime.combine(day, rule.send_time, tzinfo=zone)
                    party = day + timedelta(days=rule.days_before)
                    years = year_of(party, used) - year_of(original[0], used)
                    if (
                        start <= send <= NOW
                        and years >= 1
                        and (not rule.years or years in rule.years)
                        and birthday_in_year(original[0], year_of(party, used), used) == party
                    ):
                        due[rule.name] += 1
            elif isinstance(rule, CrossSellRule):
                mine = [(at, lines.get(oid, set())) for at, oid in bought.get(cid, [])]
                wanted, suggested = _products(rule, "bought"), _products(rule, "suggest")
                for n, (at, products) in enumerate(mine):
                    if products & wanted and start <= at + rule.after_td <= NOW:
                        later = [p for a, p in mine[n:] if a <= NOW]
                        due[rule.name] += not any(p & suggested for p in later)
            elif isinstance(rule, ReplenishRule):
                wanted = _products(rule)
                days = reorder if rule.days == "auto" else rule.days
                purchases = [
                    at for at, oid in bought.get(cid, []) if lines.get(oid, set()) & wanted
                ]
                if purchases and days is not None:
                    due[rule.name] += start <= purchases[-1] + timedelta(days=days) <= NOW
            elif isinstance(rule, AnnouncementRule):
                after, before = rule.audience.last_order_after, rule.audience.last_order_before
                low = datetime.fromisoformat(after or "1900-01-01").replace(tzinfo=shop)
                high = datetime.fromisoformat(before or "9999-01-01").replace(tzinfo=shop)
                send = rule.local_at.replace(tzinfo=zone)
                listed = last_order is not None and low <= last_order < high
                due[rule.name] += listed and start <= send  # queued ahead, all at once
            elif isinstance(rule, DrawWinnerRule):
                due[rule.name] += cid in winners and start <= DRAWN_AT <= NOW
            elif isinstance(rule, BirthdayRule) and birthday is not None:
                used = calendar if rule.calendar == "customer" else rule.calendar
                used = "jalali" if used == "jalali" else "gregorian"
                today = NOW.astimezone(zone).date()
                for day in (today - timedelta(days=1), today):
                    send = datetime.combine(day, rule.send_time, tzinfo=zone)
                    party = day + timedelta(days=rule.days_before)
                    if start <= send <= NOW and (
                        birthday_in_year(birthday, year_of(party, used), used) == party
                    ):
                        due[rule.name] += 1
    return due


def timed_pass(engine: Engine, rules: list[Rule], settings: Settings) -> tuple[float, PlanReport]:
    """One planning pass, rolled back: the database stays as built, for the next pass or run."""
    session = session_factory(engine)()
    try:
        began = time.perf_counter()
        report = plan(session, rules, FixedClock(NOW), settings)
        return time.perf_counter() - began, report
    finally:
        session.rollback()
        session.close()


def _products(rule: Rule, field: str = "bought") -> set[str]:
    """The product ids a product rule names (the bench names products by id, SKU or
    category: all three are turned into ids here)."""
    choice = getattr(rule, field)
    ids = {p.removeprefix("SKU") for p in choice.products}
    for category in choice.categories:
        ids |= {str(p) for p in range(1, PRODUCTS + 1) if f"cat{p % CATEGORIES}" == category}
    return ids


def _median_reorder_days(
    bought: dict[int, list[tuple[datetime, int]]], lines: dict[int, set[str]]
) -> int | None:
    """The replenishment rule's interval the slow way: every gap, sorted, the middle."""
    (rule,) = [r for r in PRODUCT_RULES if isinstance(r, ReplenishRule)]
    wanted = _products(rule)
    gaps = []
    for orders in bought.values():
        times = [at for at, oid in orders if at <= NOW and lines.get(oid, set()) & wanted]
        gaps += [(b - a).total_seconds() / 86400 for a, b in itertools.pairwise(times)]
    if not gaps:
        return None
    gaps.sort()
    middle = (gaps[(len(gaps) - 1) // 2] + gaps[len(gaps) // 2]) / 2
    return max(1, math.floor(middle + 0.5))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders-per-customer", type=int, default=3)
    parser.add_argument("--db", type=Path, help="reuse (or keep) the database at this path")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=2, help="alternating passes without/with")
    parser.add_argument("--skip-naive", action="store_true", help="no naive baseline (slow)")
    args = parser.parse_args()
    workdir = tempfile.TemporaryDirectory()
    path = args.db or Path(workdir.name) / "bench.db"
    if not path.exists():
        began = time.perf_counter()
        child = multiprocessing.get_context("spawn").Process(
            target=build, args=(path, args.customers, args.orders_per_customer, args.seed)
        )
        child.start()
        child.join()
        if child.exitcode:
            sys.exit(f"building the database failed ({child.exitcode})")
        print(f"built {path} in {time.perf_counter() - began:.1f} s")
    else:
        cleared = clear_ledger(path)
        print(f"reusing {path}: cleared {cleared:,} ledger rows of an earlier run")
    draw(path, args.customers)
    url = f"sqlite:///{path}"
    samples = [rule for rule in load_rules(SAMPLES / "rules").rules.values() if rule.enabled]
    # What the product plans, and one rule of each newer kind.
    rules = [*samples, SLIPPING, *DATED_RULES, *PRODUCT_RULES]
    settings = Settings.model_validate({"database": {"url": url}})
    engine = create_engine_for(url)
    rss_before = peak_rss_mb()
    planner_seconds, report = timed_pass(engine, rules, settings)
    planner_rss = peak_rss_mb()
    apart = {rule.name: timed_pass(engine, [rule], settings) for rule in APART}
    # The same pass without the new kinds, alternating with it: what they add.
    pairs = [
        (timed_pass(engine, samples, settings)[0], timed_pass(engine, rules, settings)[0])
        for _ in range(args.repeat)
    ]
    engine.dispose()
    print(f"customers: {args.customers:,}  orders: {args.customers * args.orders_per_customer:,}")
    print(f"planning pass: {planner_seconds:.3f} s")
    for name, (seconds, alone) in apart.items():
        print(
            f"{name} alone: {seconds:.3f} s for {alone.planned:,} rows "
            f"({alone.planned / seconds:,.0f} rows/s)"
        )
    for without, with_added in pairs:
        print(f"  sample rules only {without:.3f} s, with the new kinds {with_added:.3f} s")
    print(f"peak RSS: {planner_rss:.0f} MB after planning (before: {rss_before:.0f} MB)")
    if args.skip_naive:
        for name, result in report.rules.items():
            print(f"  {name:<18} planned {result.planned:>6}  held out {result.held_out:>5}")
        workdir.cleanup()
        return
    began = time.perf_counter()
    baseline = naive(url, [*rules, *APART], ZoneInfo(settings.customers.timezone))
    naive_seconds = time.perf_counter() - began
    mismatches = 0
    planned_apart = [(name, passed.rules[name]) for name, (_, passed) in apart.items()]
    for name, result in [*report.rules.items(), *planned_apart]:
        found = result.planned + result.held_out
        agree = "ok" if found == baseline[name] else f"MISMATCH (naive {baseline[name]})"
        mismatches += found != baseline[name]
        print(f"  {name:<18} planned {result.planned:>6}  held out {result.held_out:>5}  {agree}")
    with session_factory(engine)() as session:
        for rule in PRODUCT_RULES:
            if isinstance(rule, ReplenishRule) and rule.days == "auto":
                days = reorder_days(session, rule.bought, NOW)
                print(f"  {rule.name}: days = auto is {days} days (median reorder interval)")
    engine.dispose()
    print(f"naive baseline: {naive_seconds:.1f} s")
    print(f"ratio: {naive_seconds / planner_seconds:.0f}x faster")
    print(f"peak RSS incl. naive baseline: {peak_rss_mb():.0f} MB")
    workdir.cleanup()
    if mismatches or set(baseline) - set(report.rules) - set(apart):
        sys.exit("the planner and the naive baseline disagree")


if __name__ == "__main__":
    main()
