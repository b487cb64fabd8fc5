"""Benchmark: `campaigner report` on a large ledger, against a naive Python loop, on SQLite
and PostgreSQL in the same run.

    .venv/bin/python bench/report.py                      # 1,000,000 messages, both databases
    .venv/bin/python bench/report.py --messages 20000 --backend sqlite --html report.html

Builds a synthetic shop (customers, two years of orders, a ledger over the last 60 days with
every status, holdouts, coupons and NPS replies) once, in a SQLite file that later runs reuse,
and copies it into a PostgreSQL database (`--pg-name`, default `bench_report_<messages>_<seed>`,
also reused; see bench/scratch.py). Then times the report (SQL aggregation and the rendered
terminal tables, in a read-only session as `campaigner report` reads) and a baseline that
loads the rows and counts in Python. Each measurement runs in its own process, so its peak
memory is its own (building the database is not in it; the growth over the process's size
before it read anything is printed too). CPU time is the measuring process's, and on
PostgreSQL also that of its server backend (read from /proc when the server is local): on a
loaded machine it is steadier than wall time. Both must agree on every per-rule figure they
share; the script exits non-zero otherwise.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import io
import itertools
import multiprocessing
import os
import random
import resource
import sqlite3
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
from scratch import BACKENDS, PG_ADMIN_URL
from sqlalchemy import Engine, create_engine, event, select, text

from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.db import create_engine_for, read_only_session, session_factory, upgrade
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
TARGET = 3.0  # seconds for the whole report (issue 17)


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


# Texts of a real campaign's length (Persian two-part UCS-2, English one-part GSM-7).
TEXT_FA = (
    "سارا عزیز، از خرید شما سپاسگزاریم! با کد W{0} تا پایان هفته ۱۰٪ تخفیف بگیرید. "
    "فروشگاه نمونه - لغو۱۱"
)
TEXT_EN = "Sara, thank you for your order! Use code W{0} for 10% off this week. Shop - STOP 11"


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
                # As wide as a real row: the text sent, the gateway and its message id.
                "text": (TEXT_FA if ucs2 else TEXT_EN).format(number) if accepted else None,
                "gateway": "kannel" if accepted else None,
                "provider_id": f"{number:08x}-4f1c-9d2e-{customer:012x}" if accepted else None,
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
    """As `campaigner report` reads: two sessions at one snapshot where the code has them
    (an older version on PYTHONPATH, for before/after, reads in one session)."""
    helper: dict[str, Any] = {}
    sessions: contextlib.AbstractContextManager[tuple[Any, Any] | None]
    try:
        from campaigner.db.snapshot import read_only_pair
    except ImportError:
        sessions = contextlib.nullcontext(None)
    else:
        sessions = read_only_pair(engine)
    with sessions as pair, read_only_session(engine) if pair is None else _first(pair) as session:
        if pair is not None:
            helper["helper"] = pair[1]
        report = build_report(
            session,
            since=SINCE,
            until=UNTIL,
            rule=None,
            attribution_days={},
            settings=settings,
            clock=FixedClock(NOW),
            **helper,
        )
    out = io.StringIO()
    print_report(report, Console(file=out, width=120))
    return report, out.getvalue()


@contextlib.contextmanager
def _first(pair: tuple[Any, Any]) -> Iterator[Any]:
    yield pair[0]


def naive_report(engine: Engine) -> dict[str, dict[str, Any]]:
    """What a first attempt looks like: load the rows, loop in Python."""
    start = datetime.combine(SINCE, datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(UNTIL + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    with session_factory(engine)() as session:
        purchases: dict[int, list[tuple[datetime, Decimal]]] = defaultdict(list)
        for customer, paid_at, total in session.execute(
            select(Order.customer_id, Order.paid_at, Order.total).where(Order.status == "paid")
        ):
            assert paid_at is not None  # every paid order of the shop is stamped
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


def shared_figures(report: Report) -> dict[str, dict[str, Any]]:
    """The per-rule figures the naive baseline also computes."""
    return {
        stats.rule: {
            "planned": stats.planned,
            "sent": stats.sent,
            "delivered": stats.delivered,
            "conversions": stats.conversions,
            # every generated order is in IRT: one revenue row, or none
            "revenue": sum((item.amount for item in stats.revenue), Decimal(0)),
        }
        for stats in report.rules
    }


def peak_mb() -> float:
    """The process's peak resident memory so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) of this process and of the given local processes."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    total = usage.ru_utime + usage.ru_stime
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def measure(variant: str, url: str, repeat: int, html: Path | None) -> dict[str, Any]:
    """Run in a fresh process: `repeat` timings of one variant, its figures and peak memory."""
    engine = create_engine_for(url)
    backends: list[int] = []
    if engine.dialect.name == "postgresql":

        @event.listens_for(engine, "connect")
        def _backend(connection: Any, _record: Any) -> None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backends.append(cursor.fetchone()[0])
            connection.rollback()  # leave it idle, as the pool hands out connections

    settings = Settings.model_validate({"shop": {"name": "فروشگاه نمونه"}})
    with engine.connect() as connection:  # the connection, not the work, before the baseline
        connection.execute(text("select 1"))
    idle = peak_mb()
    timings = []
    cpu = []
    tables = ""
    for _ in range(repeat):
        began, cpu_began = time.perf_counter(), cpu_seconds(backends)
        if variant == "report":
            report, tables = sql_report(engine, settings)
            figures = shared_figures(report)
        else:
            figures = naive_report(engine)
        timings.append(time.perf_counter() - began)
        cpu.append(cpu_seconds(backends) - cpu_began)
    if html is not None and variant == "report":
        page = render_html(report, shop_name=settings.shop.name, descriptions=DESCRIPTIONS)
        html.write_text(page, encoding="utf-8")
    engine.dispose()
    return {
        "timings": timings,
        "cpu": cpu,
        "figures": figures,
        "peak": peak_mb(),
        "idle": idle,
        "tables": tables,
    }


def profile(url: str) -> list[str]:
    """Run in a fresh process: the report in one session (so each statement's CPU is its
    own), each statement timed by cursor events, then the plans of those over 0.1 s."""
    engine = create_engine_for(url)
    postgres = engine.dialect.name == "postgresql"
    backends: list[int] = []
    if postgres:

        @event.listens_for(engine, "connect")
        def _backend(connection: Any, _record: Any) -> None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backends.append(cursor.fetchone()[0])
            connection.rollback()

    timed: list[dict[str, Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        frame = sys._getframe()
        while frame.f_back and not frame.f_code.co_filename.endswith("reports/build.py"):
            frame = frame.f_back
        section = frame.f_code.co_name if frame.f_code.co_filename.endswith("build.py") else ""
        timed.append(
            {
                "section": section,
                "statement": statement,
                "params": params,
                "wall": time.perf_counter(),
                "cpu": time.thread_time(),
                "backend": cpu_seconds(backends) - cpu_seconds([]),
            }
        )

    settings = Settings.model_validate({"shop": {"name": "فروشگاه نمونه"}})
    with read_only_session(engine) as session:
        build_report(
            session,
            since=SINCE,
            until=UNTIL,
            rule=None,
            attribution_days={},
            settings=settings,
            clock=FixedClock(NOW),
        )
        timed.append({"wall": time.perf_counter(), "cpu": time.thread_time()})
        timed[-1]["backend"] = cpu_seconds(backends) - cpu_seconds([])
    lines = [
        "| section | wall s | client CPU s | server CPU s | statement |",
        "|---|---:|---:|---:|---|",
    ]
    slow = []
    for this, after in itertools.pairwise(timed):
        wall = after["wall"] - this["wall"]  # until the next statement: its rows fetched too
        if wall < 0.01:
            continue
        backend = f"{after['backend'] - this['backend']:.2f}" if postgres else "-"
        text_ = " ".join(this["statement"].split())
        lines.append(
            f"| {this['section']} | {wall:.2f} | {after['cpu'] - this['cpu']:.2f} "
            f"| {backend} | `{text_[:70]}…` |"
        )
        if wall > 0.1:
            slow.append(this)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if postgres:  # as the report's transaction has them (reports/sql.py)
            cursor.execute("SET jit = off")
        for this in slow:
            cursor.execute(
                ("EXPLAIN " if postgres else "EXPLAIN QUERY PLAN ") + this["statement"],
                this["params"],
            )
            lines.append(f"plan of {this['section']}:")
            lines += [f"    {row[-1]}" for row in cursor.fetchall()]
    finally:
        raw.close()
    engine.dispose()
    return lines


def in_child(variant: str, url: str, repeat: int, html: Path | None = None) -> dict[str, Any]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        result: dict[str, Any] = pool.apply(measure, (variant, url, repeat, html))
    return result


def sqlite_database(messages: int, seed: int, path: Path | None) -> Path:
    """The benchmark's SQLite file, generated (in a child process) unless it exists."""
    path = path or Path(tempfile.gettempdir()) / f"campaigner-bench-{messages}-{seed}.db"
    if not path.exists() or path.stat().st_size == 0:
        began = time.perf_counter()
        child = multiprocessing.get_context("spawn").Process(
            target=build_sqlite, args=(path, messages, seed)
        )
        child.start()
        child.join()
        if child.exitcode:
            sys.exit(f"generating {path} failed ({child.exitcode})")
        print(f"generated {messages:,} messages in {time.perf_counter() - began:.1f} s: {path}")
    return path


def build_sqlite(path: Path, messages: int, seed: int) -> None:
    engine = create_engine_for(f"sqlite:///{path}")
    upgrade(engine)
    generate(engine, messages, seed)
    engine.dispose()
    # Outside a transaction (the engine begins each one with BEGIN IMMEDIATE).
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


COPIED = ("customers", "orders", "messages", "coupons", "nps_responses")


def postgres_database(source: Path, name: str) -> str:
    """A PostgreSQL copy of the SQLite file, kept between runs like the file itself."""
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
        ).first()
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    engine = create_engine_for(url)
    upgrade(engine)
    with engine.connect() as connection:
        ready = connection.execute(text("SELECT count(*) FROM messages")).scalar_one()
    if not ready:
        began = time.perf_counter()
        copy_into_postgres(source, engine)
        print(f"copied {source} into PostgreSQL in {time.perf_counter() - began:.1f} s: {name}")
    engine.dispose()
    return url


def copy_into_postgres(source: Path, engine: Engine) -> None:
    lite = sqlite3.connect(source)
    raw = engine.raw_connection()
    try:
        cursor = raw.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("SET TIME ZONE 'UTC'")  # the file's times are UTC without an offset
        for table in COPIED:
            rows = lite.execute(f"SELECT * FROM {table}")
            columns = ", ".join(column[0] for column in rows.description)
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT max(id) FROM {table}))"
            )
        raw.commit()
        cursor.execute("ANALYZE")  # what autovacuum would have done on a live database
        raw.commit()
    finally:
        raw.close()
        lite.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", type=Path, help="SQLite file (reused if it exists)")
    parser.add_argument("--backend", choices=BACKENDS, action="append", help="default: both")
    parser.add_argument(
        "--pg-name",
        help="PostgreSQL database (reused if filled); default bench_report_<messages>_<seed>",
    )
    parser.add_argument("--html", type=Path, help="also write the HTML report (SQLite) here")
    parser.add_argument("--no-baseline", action="store_true", help="skip the naive loop")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; best and worst shown")
    parser.add_argument(
        "--profile", action="store_true", help="time each statement of the report and show plans"
    )
    args = parser.parse_args()
    source = sqlite_database(args.messages, args.seed, args.db)
    failed = False
    for backend in args.backend or BACKENDS:
        if backend == "sqlite":
            url = f"sqlite:///{source}"
        else:
            name = args.pg_name or f"bench_report_{args.messages}_{args.seed}"
            url = postgres_database(source, name)
        engine = create_engine_for(url)
        with engine.connect() as connection:
            counted = connection.execute(text("select count(*) from messages")).scalar_one()
            orders = connection.execute(text("select count(*) from orders")).scalar_one()
        engine.dispose()
        print(f"{backend}: ledger of {counted:,} messages, {orders:,} orders", flush=True)
        if args.profile:
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                print("\n".join(pool.apply(profile, (url,))), flush=True)
            continue
        html = args.html if backend == "sqlite" else None
        ours = in_child("report", url, args.repeat, html)
        show("report (SQL aggregation + terminal tables)", ours, args.repeat)
        best = min(ours["timings"])
        print(f"  target: whole report under {TARGET:g} s: {'met' if best < TARGET else 'NOT met'}")
        if not args.no_baseline:
            naive = in_child("naive", url, args.repeat)
            show("naive baseline (Python loop over rows)  ", naive, args.repeat)
            ratio = min(naive["timings"]) / best
            verdict = "faster" if ratio >= 1 else "SLOWER"
            print(f"  report vs naive: {ratio:.1f}x ({verdict} than the naive loop)")
            for rule, expected in naive["figures"].items():
                got = ours["figures"].get(rule)
                if got != expected:
                    print(f"  {rule}: SQL {got} != naive {expected}")
                    failed = True
            if not failed:
                print("  both agree on planned, sent, delivered, conversions and revenue per rule")
        if html is not None:
            print(f"wrote {html}")
        if counted <= 50_000 and backend == "sqlite":
            print(ours["tables"])
    if failed:
        sys.exit("the report and the naive baseline disagree")


def show(label: str, result: dict[str, Any], repeat: int) -> None:
    timings, cpu = result["timings"], result["cpu"]
    print(
        f"  {label}: best {min(timings):.2f} s, worst {max(timings):.2f} s of {repeat} "
        f"(CPU {min(cpu):.2f}–{max(cpu):.2f} s); peak RSS {result['peak']:.0f} MB, "
        f"{result['peak'] - result['idle']:.0f} MB over the process at start",
        flush=True,
    )


if __name__ == "__main__":
    main()
