"""Benchmark: `campaigner report` on a large ledger, against a naive Python loop.

    .venv/bin/python bench/report.py                      # 1,000,000 messages in SQLite
    .venv/bin/python bench/report.py --messages 20000 --html report.html

Builds a synthetic shop (customers, two years of orders, a ledger over the last 60 days with
every status, holdouts, coupons and NPS replies) once, in a SQLite file that later runs reuse,
then times the report (SQL aggregation and the rendered terminal tables) and a baseline that
loads the rows and counts in Python. Both must agree on every per-rule figure they share.
"""

from __future__ import annotations

import argparse
import bisect
import io
import random
import resource
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import Engine, select, text

from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.db import create_engine_for, session_factory, upgrade
from campaigner.db.models import Message, Order
from campaigner.reports import Report, build_report, render_html
from campaigner.reports.terminal import print_report

NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
SINCE, UNTIL = date(2026, 3, 1), date(2026, 3, 31)
RULES = {
    # rule: (share of the ledger, chance a messaged customer buys within a week, holdout chance)
    "thank_you": (0.35, 0.10, 0.07),
    "birthday": (0.15, 0.14, 0.10),
    "win_back": (0.25, 0.09, 0.05),
    "referral_request": (0.10, 0.05, 0.05),
    "nps_survey": (0.15, 0.03, 0.03),
}
DESCRIPTIONS = {
    "thank_you": "تشکر پس از خرید",
    "birthday": "تولدت مبارک، با یک هدیه",
    "win_back": "دلمان برایت تنگ شده: ۹۰ روز بدون خرید",
    "referral_request": "دوستانت را معرفی کن",
    "nps_survey": "از ۰ تا ۱۰ چقدر ما را پیشنهاد می‌کنی؟",
}
STATUSES = [
    # (status, reason, weight) for rows that are not held out
    ("delivered", None, 64),
    ("sent", None, 9),
    ("undelivered", None, 4),
    ("failed", "invalid_number", 2),
    ("failed", "rejected", 1),
    ("skipped", "opted_out", 5),
    ("skipped", "cap", 6),
    ("skipped", "no_consent", 3),
    ("expired", None, 3),
    ("queued", None, 2),
    ("unknown", None, 1),
]
ACCEPTED = {"sent", "delivered", "undelivered"}
NAMES = ["سارا", "علی", "مریم", "رضا", "زهرا", "امید", "Olivia", "Liam", "Emma", "Noah"]
CHUNK = 50_000


def generate(engine: Engine, messages: int, seed: int) -> None:
    rng = random.Random(seed)
    customers = max(messages // 10, 200)
    with engine.begin() as connection:
        insert_rows(connection, "customers", customer_rows(rng, customers))
        insert_rows(connection, "orders", history_rows(rng, customers))
        ledger, extra_orders, coupons, replies = ledger_rows(rng, messages, customers)
        insert_rows(connection, "messages", ledger)
        insert_rows(connection, "orders", extra_orders)
        insert_rows(connection, "coupons", coupons)
        insert_rows(connection, "nps_responses", replies)


def insert_rows(connection: Any, table: str, rows: Iterator[dict[str, Any]] | list[Any]) -> None:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == CHUNK:
            _flush(connection, table, batch)
            batch = []
    if batch:
        _flush(connection, table, batch)


def _flush(connection: Any, table: str, batch: list[dict[str, Any]]) -> None:
    columns = list(batch[0])
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    connection.exec_driver_sql(sql, [tuple(row[c] for c in columns) for row in batch])


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


def customer_rows(rng: random.Random, customers: int) -> Iterator[dict[str, Any]]:
    created = stamp(NOW - timedelta(days=800))
    for number in range(1, customers + 1):
        yield {
            "id": number,
            "external_id": f"c{number}",
            "first_name": rng.choice(NAMES),
            "last_name": "",
            "phone": f"+98912{number:07d}",
            "calendar": "jalali",
            "timezone": "Asia/Tehran",
            "locale": "fa",
            "tags": "",
            "marketing_consent": 1,
            "city": "",
            "orders_count": 0,
            "total_spent": 0,
            "referral_code": f"R{number}",
            "referred_by_id": rng.randint(1, number - 1)
            if number > 1 and rng.random() < 0.05
            else None,
            "created_at": created,
            "updated_at": created,
        }


_order_ids = iter(range(1, 10**9))


def order_row(
    customer: int, paid_at: datetime, total: int, coupon: str | None = None
) -> dict[str, Any]:
    number = next(_order_ids)
    return {
        "id": number,
        "external_id": f"o{number}",
        "customer_id": customer,
        "total": total,
        "currency": "IRT",
        "status": "paid",
        "paid_at": stamp(paid_at),
        "coupon_code": coupon,
        "created_at": stamp(paid_at),
        "updated_at": stamp(paid_at),
    }


def history_rows(rng: random.Random, customers: int) -> Iterator[dict[str, Any]]:
    for customer in range(1, customers + 1):
        for _ in range(rng.choice((0, 1, 1, 2, 2, 3, 4, 6))):
            paid_at = NOW - timedelta(days=rng.uniform(60, 730))
            yield order_row(customer, paid_at, rng.randrange(200, 5000) * 1000)


def ledger_rows(
    rng: random.Random, messages: int, customers: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    rules = list(RULES)
    shares = [RULES[r][0] for r in rules]
    statuses = [(s, r) for s, r, _ in STATUSES]
    weights = [w for *_, w in STATUSES]
    ledger, orders, coupons, replies = [], [], [], []
    for number in range(1, messages + 1):
        rule = rng.choices(rules, shares)[0]
        customer = rng.randint(1, customers)
        due = NOW - timedelta(days=rng.uniform(0, 45), minutes=rng.randint(0, 600))
        held = rng.random() < 0.1
        status, reason = ("held_out", None) if held else rng.choices(statuses, weights)[0]
        accepted = status in ACCEPTED
        sent_at = due + timedelta(minutes=rng.randint(0, 90)) if accepted else None
        ucs2 = rng.random() < 0.7
        ledger.append(
            {
                "id": number,
                "rule": rule,
                "customer_id": customer,
                "occurrence_key": str(number),
                "status": status,
                "reason": reason,
                "priority": 0,
                "phone": f"+98912{customer:07d}",
                "due_at": stamp(due),
                "scheduled_for": stamp(due),
                "segments": rng.choice((1, 1, 2, 3)) if accepted else None,
                "encoding": ("ucs2" if ucs2 else "gsm7") if accepted else None,
                "attempts": 1 if accepted else 0,
                "created_at": stamp(due),
                "updated_at": stamp(due),
                "sent_at": stamp(sent_at) if sent_at else None,
                "delivered_at": stamp(sent_at) if status == "delivered" and sent_at else None,
            }
        )
        _, buys, baseline = RULES[rule]
        reference = sent_at or due
        chance = buys if accepted else baseline if held else 0
        code = f"W{number}" if rule == "win_back" and accepted else None
        if rng.random() < chance and reference + timedelta(days=1) < NOW:
            paid_at = reference + timedelta(days=rng.uniform(0.1, 6.9))
            if paid_at < NOW:
                orders.append(order_row(customer, paid_at, rng.randrange(200, 5000) * 1000, code))
        if code:
            redeemed = orders[-1]["id"] if orders and orders[-1]["coupon_code"] == code else None
            coupons.append(
                {
                    "code": code,
                    "customer_id": customer,
                    "rule": rule,
                    "message_id": number,
                    "percent": 10,
                    "expires_at": stamp(reference + timedelta(days=10)),
                    "created_at": stamp(reference),
                    "redeemed_order_id": redeemed,
                }
            )
        if rule == "nps_survey" and status == "delivered" and sent_at and rng.random() < 0.3:
            replies.append(
                {
                    "customer_id": customer,
                    "phone": f"+98912{customer:07d}",
                    "rule": rule,
                    "message_id": number,
                    "score": rng.choices(range(11), (2, 1, 1, 2, 2, 4, 5, 9, 12, 14, 12))[0],
                    "received_at": stamp(sent_at + timedelta(hours=rng.uniform(0.1, 30))),
                }
            )
    return ledger, orders, coupons, replies


def sql_report(engine: Engine, settings: Settings) -> tuple[Report, str]:
    with session_factory(engine)() as session:
        report = build_report(
            session,
            since=SINCE,
            until=UNTIL,
            rule=None,
            attribution_days={},
            settings=settings,
            clock=FixedClock(NOW),
        )
    out = io.StringIO()
    print_report(report, Console(file=out, width=120))
    return report, out.getvalue()


def naive_report(engine: Engine) -> dict[str, dict[str, Any]]:
    """What a first attempt looks like: load the rows, loop in Python."""
    start = datetime.combine(SINCE, datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(UNTIL + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    with session_factory(engine)() as session:
        purchases: dict[int, list[tuple[datetime, Decimal]]] = defaultdict(list)
        for customer, paid_at, total in session.execute(
            select(Order.customer_id, Order.paid_at, Order.total).where(Order.status == "paid")
        ):
            purchases[customer].append((paid_at, total))
        for history in purchases.values():
            history.sort()
        stats: dict[str, dict[str, Any]] = defaultdict(
            lambda: {
                "planned": 0,
                "sent": 0,
                "delivered": 0,
                "conversions": 0,
                "revenue": Decimal(0),
            }
        )
        rows = session.execute(
            select(Message.rule, Message.customer_id, Message.status, Message.sent_at).where(
                Message.due_at >= start, Message.due_at < end
            )
        )
        for rule, customer, status, sent_at in rows:
            entry = stats[rule]
            entry["planned"] += 1
            if status not in ACCEPTED or sent_at is None:
                continue
            entry["sent"] += 1
            entry["delivered"] += status == "delivered"
            history = purchases.get(customer, [])
            first = bisect.bisect_right(history, (sent_at, Decimal("Infinity")))
            window = [t for paid, t in history[first:] if paid <= sent_at + timedelta(days=7)]
            if window:
                entry["conversions"] += 1
                entry["revenue"] += sum(window)
    return dict(stats)


def peak_mb() -> float:
    """The process's peak resident memory so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", type=Path, help="SQLite file (reused if it exists)")
    parser.add_argument("--html", type=Path, help="also write the HTML report here")
    parser.add_argument("--no-baseline", action="store_true", help="skip the naive loop")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; best and worst shown")
    args = parser.parse_args()
    path = (
        args.db or Path(tempfile.gettempdir()) / f"campaigner-bench-{args.messages}-{args.seed}.db"
    )
    engine = create_engine_for(f"sqlite:///{path}")
    if not path.exists() or path.stat().st_size == 0:
        upgrade(engine)
        began = time.perf_counter()
        generate(engine, args.messages, args.seed)
        print(
            f"generated {args.messages:,} messages in {time.perf_counter() - began:.1f} s: {path}"
        )
    with engine.connect() as connection:
        counted = connection.execute(text("select count(*) from messages")).scalar_one()
        orders = connection.execute(text("select count(*) from orders")).scalar_one()
    print(f"ledger: {counted:,} messages, {orders:,} orders")

    settings = Settings.model_validate({"shop": {"name": "فروشگاه نمونه"}})
    timings = []
    for _ in range(args.repeat):
        began = time.perf_counter()
        report, tables = sql_report(engine, settings)
        timings.append(time.perf_counter() - began)
    print(
        f"report (SQL aggregation + terminal tables): best {min(timings):.2f} s, "
        f"worst {max(timings):.2f} s of {args.repeat}; peak memory {peak_mb():.0f} MB"
    )

    if not args.no_baseline:
        timings = []
        for _ in range(args.repeat):
            began = time.perf_counter()
            naive = naive_report(engine)
            timings.append(time.perf_counter() - began)
        print(
            f"naive baseline (Python loop over rows):   best {min(timings):.2f} s, "
            f"worst {max(timings):.2f} s of {args.repeat}; peak memory {peak_mb():.0f} MB"
        )
        for stats in report.rules:
            expected = naive[stats.rule]
            got = {
                "planned": stats.planned,
                "sent": stats.sent,
                "delivered": stats.delivered,
                "conversions": stats.conversions,
                # every generated order is in IRT: one revenue row, or none
                "revenue": sum((item.amount for item in stats.revenue), Decimal(0)),
            }
            if got != expected:
                sys.exit(f"{stats.rule}: SQL {got} != naive {expected}")
        print("both agree on planned, sent, delivered, conversions and revenue for every rule")
    if args.html:
        args.html.write_text(
            render_html(report, shop_name=settings.shop.name, descriptions=DESCRIPTIONS),
            encoding="utf-8",
        )
        print(f"wrote {args.html}")
    if counted <= 50_000:
        print(tables)
    engine.dispose()


if __name__ == "__main__":
    main()
