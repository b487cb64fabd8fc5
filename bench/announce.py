"""Benchmark: queueing an approved announcement to a large shop, against a naive baseline
that loads the audience into Python and inserts one ledger row per customer.

    .venv/bin/python bench/announce.py                     # 1,000,000 customers
    .venv/bin/python bench/announce.py --customers 100000  # a quicker run

The announcement goes to every consenting customer in their own time zone (5 zones), at
10:00 the next day, spread over 3 hours. The planner queues it with one INSERT … SELECT;
the baseline computes each customer's due time in Python and inserts rows in batches of
10,000. Both must queue the same (customer, due time) rows; the script checks that they do.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from plan import NOW, build, peak_rss_mb
from pydantic import TypeAdapter
from sqlalchemy import delete, insert, select, text

from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.db import create_engine_for, session_factory
from campaigner.db.models import Announcement, Customer, Message, OptOut
from campaigner.planner import plan
from campaigner.rules.models import AnnouncementRule, Rule
from campaigner.rules.triggers.announcement import spread_offset

BATCH = 10_000
RULE: Rule = TypeAdapter(Rule).validate_python(
    {
        "name": "bench_sale",
        "trigger": "announcement",
        "template": "sale.j2",
        "at": "2026-03-21T10:00",
        "spread": "3h",
        "approved": True,
    }
)


def naive(url: str, rule: AnnouncementRule) -> int:
    """The obvious way: the audience in Python, each due time computed, rows inserted."""
    engine = create_engine_for(url)
    spread = int(rule.spread_td.total_seconds())
    queued = 0
    with session_factory(engine).begin() as session:
        opted_out = set(session.scalars(select(OptOut.phone)))
        people = session.execute(
            select(Customer.id, Customer.phone, Customer.timezone).where(
                Customer.marketing_consent.is_(True),
                Customer.phone.is_not(None),
                Customer.phone_invalid_at.is_(None),
            )
        ).all()
        zones: dict[str, ZoneInfo] = {}
        rows: list[dict[str, Any]] = []
        for customer_id, phone, zone_name in people:
            if phone in opted_out:
                continue
            zone = zones.setdefault(zone_name, ZoneInfo(zone_name))
            start = rule.local_at.replace(tzinfo=zone).astimezone(UTC)
            due = start + timedelta(seconds=spread_offset(rule.name, customer_id, spread))
            rows.append(
                {
                    "rule": rule.name,
                    "customer_id": customer_id,
                    "occurrence_key": rule.occurrence_key,
                    "status": "queued",
                    "priority": rule.priority,
                    "phone": phone,
                    "due_at": due,
                    "scheduled_for": due,
                    "expires_at": due + rule.lateness,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
            )
            if len(rows) == BATCH:
                session.execute(insert(Message), rows)
                queued += len(rows)
                rows = []
        if rows:
            session.execute(insert(Message), rows)
            queued += len(rows)
    engine.dispose()
    return queued


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, help="reuse (or keep) the database at this path")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    workdir = tempfile.TemporaryDirectory()
    path = args.db or Path(workdir.name) / "bench.db"
    if not path.exists():
        began = time.perf_counter()
        child = multiprocessing.get_context("spawn").Process(
            target=build, args=(path, args.customers, 0, args.seed)
        )
        child.start()
        child.join()
        if child.exitcode:
            sys.exit(f"building the database failed ({child.exitcode})")
        print(f"built {path} in {time.perf_counter() - began:.1f} s")
    url = f"sqlite:///{path}"
    settings = Settings.model_validate({"database": {"url": url}})
    engine = create_engine_for(url)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        session.execute(delete(Message))
        session.execute(delete(Announcement))
    assert isinstance(RULE, AnnouncementRule)
    began, cpu = time.perf_counter(), time.process_time()
    with sessions.begin() as session:
        report = plan(session, [RULE], FixedClock(NOW), settings)
    planner_seconds = time.perf_counter() - began
    planner_cpu = time.process_time() - cpu
    planner_rss = peak_rss_mb()
    with sessions.begin() as session:
        session.execute(text("DROP TABLE IF EXISTS bench_planned"))
        session.execute(
            text("CREATE TABLE bench_planned AS SELECT customer_id, due_at FROM messages")
        )
        session.execute(delete(Message))
    began = time.perf_counter()
    baseline = naive(url, RULE)
    naive_seconds = time.perf_counter() - began
    with sessions() as session:
        differ = session.scalar(
            text(
                "SELECT (SELECT count(*) FROM (SELECT customer_id, due_at FROM bench_planned"
                " EXCEPT SELECT customer_id, due_at FROM messages))"
                " + (SELECT count(*) FROM (SELECT customer_id, due_at FROM messages"
                " EXCEPT SELECT customer_id, due_at FROM bench_planned))"
            )
        )
    engine.dispose()
    queued = report.rules[RULE.name].planned
    agree = "ok" if differ == 0 and queued == baseline else f"MISMATCH ({differ} rows differ)"
    print(f"customers: {args.customers:,}  queued: {queued:,}  naive: {baseline:,}  {agree}")
    print(f"queueing (one INSERT … SELECT): {planner_seconds:.2f} s ({planner_cpu:.2f} s CPU)")
    print(f"naive baseline: {naive_seconds:.1f} s")
    print(f"ratio: {naive_seconds / planner_seconds:.1f}x faster")
    print(f"peak RSS: {planner_rss:.0f} MB after queueing; {peak_rss_mb():.0f} MB after baseline")
    print("load average at the end: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    workdir.cleanup()
    if agree != "ok":
        sys.exit(1)


if __name__ == "__main__":
    main()
