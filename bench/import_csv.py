"""Benchmark: CSV customer import — streaming, batched upserts vs a naive load-everything import.

Each variant runs in its own subprocess, into a fresh database, so that peak RSS is measured
per variant; both on SQLite and on PostgreSQL (see bench/scratch.py), in the same run.

    .venv/bin/python bench/import_csv.py                       # 1,000,000 rows, both databases
    .venv/bin/python bench/import_csv.py --rows 100000 --backend sqlite   # quicker
    .venv/bin/python bench/import_csv.py --no-baseline --in-turn   # writer thread or not

Besides wall-clock rows/s, each line shows rows per CPU second of the importing process (on
a shared machine the wall clock also counts other jobs' time) and, on PostgreSQL, the CPU
seconds of the server backends the import used (read from /proc: the server must be local),
the load-independent figure of the database's own share. The file mixes the ways people
write Iranian mobiles (0912…, +98 912…, 0098…, Persian digits, dashes and parentheses),
Gregorian and Jalali birthdays.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scratch import BACKENDS, drop_database, fresh_database

if TYPE_CHECKING:
    from sqlalchemy import Engine

PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def written_phone(i: int) -> str:
    """The i-th customer's mobile, in one of the forms shops' exports have."""
    national = f"912{i % 10_000_000:07d}"
    shapes = (
        f"0{national}",
        f"+98 {national[:3]} {national[3:6]} {national[6:]}",
        f"0098-{national}",
        f"0{national}".translate(PERSIAN),
        f"({national[:3]}) {national[3:]}",
        f"98{national}",
    )
    return shapes[i % len(shapes)]


def make_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "first_name", "last_name", "phone", "birthday", "tags", "consent"])
        for i in range(rows):
            writer.writerow(
                [
                    f"c{i}",
                    "علی" if i % 2 else "Olivia",
                    "رضایی",
                    written_phone(i),
                    f"{1960 + i % 40}-{1 + i % 12:02d}-{1 + i % 28:02d}"
                    if i % 3
                    else f"{1340 + i % 40}/{1 + i % 12:02d}/{1 + i % 29:02d}",
                    "vip;app" if i % 5 == 0 else "",
                    "yes",
                ]
            )


def streaming(csv_path: Path, engine: Engine, **options: Any) -> None:
    from campaigner.config import CustomerDefaults
    from campaigner.customers.importer import import_csv
    from campaigner.db import session_factory

    sessions = session_factory(engine)
    report = import_csv(sessions, "customers", csv_path, CustomerDefaults(), **options)
    assert report.rejected == 0, report.summary()


def in_turn(csv_path: Path, engine: Engine) -> None:
    """The streaming import with every batch written in turn, no writer thread."""
    streaming(csv_path, engine, writer_thread=False)


def naive(csv_path: Path, engine: Engine) -> None:
    """What a first version would do: read the whole file, one ORM object per row."""
    from campaigner.config import CustomerDefaults
    from campaigner.customers.importer import customer_row
    from campaigner.db import session_factory
    from campaigner.db.models import Customer

    with csv_path.open(encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    defaults = CustomerDefaults()
    with session_factory(engine).begin() as session:
        for raw in records:
            raw["external_id"] = raw.pop("id")
            raw["marketing_consent"] = raw.pop("consent")
            session.add(Customer(**customer_row(raw, defaults)))


def backend_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) of these local server processes so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def child(variant: str, csv_path: str, url: str) -> None:
    """Time one import into a migrated database; the migration is not part of it."""
    from sqlalchemy import event

    from campaigner.db import create_engine_for, upgrade

    engine = create_engine_for(url)
    upgrade(engine)
    backends: list[int] = []
    if engine.dialect.name == "postgresql":
        engine.dispose()  # the import's connections are new ones, each with its backend

        @event.listens_for(engine, "connect")
        def _backend(connection: Any, _record: Any) -> None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backends.append(cursor.fetchone()[0])

    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    start = time.perf_counter()
    {"streaming": streaming, "in-turn": in_turn, "naive": naive}[variant](Path(csv_path), engine)
    elapsed = time.perf_counter() - start
    server = backend_cpu(backends)  # before dispose: the backends end with their connections
    engine.dispose()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu_before
    figures = {"seconds": elapsed, "cpu": cpu, "server_cpu": server}
    print(json.dumps({**figures, "peak_mb": usage.ru_maxrss / 1024}))


def run(variant: str, backend: str, csv_path: Path, workdir: Path) -> dict[str, float]:
    # The process id in the name: two runs at once (the lead's and a helper's) must not
    # drop each other's database.
    url = fresh_database(backend, f"bench_import_csv_{variant}_{os.getpid()}", workdir)
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--child", variant, str(csv_path), url],
            check=True,
            capture_output=True,
            text=True,
        )
    finally:
        drop_database(url)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=BACKENDS, action="append", help="default: both")
    parser.add_argument("--no-baseline", action="store_true", help="skip the naive import")
    parser.add_argument(
        "--in-turn",
        action="store_true",
        help="also the streaming import without a writer thread (batches written in turn)",
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    variants = ["streaming", *(["in-turn"] if args.in_turn else [])]
    variants += [] if args.no_baseline else ["naive"]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        csv_path = workdir / "customers.csv"
        make_csv(csv_path, args.rows)
        size_mb = csv_path.stat().st_size / 2**20
        print(f"customers CSV: {args.rows:,} rows, {size_mb:.0f} MB")
        for backend in args.backend or BACKENDS:
            results = {}
            for variant in variants:
                figures = results[variant] = run(variant, backend, csv_path, workdir)
                rate = args.rows / figures["seconds"]
                server = (
                    f", server {figures['server_cpu']:.1f} CPU s" if backend == "postgresql" else ""
                )
                print(
                    f"{backend:>10} {variant:>9}: {figures['seconds']:7.1f} s  "
                    f"{rate:9,.0f} rows/s  ({args.rows / figures['cpu']:,.0f} per CPU second "
                    f"of the importing process: {figures['cpu']:.1f} s{server})  "
                    f"peak RSS {figures['peak_mb']:6.0f} MB",
                    flush=True,
                )
            if "naive" in results:
                s, n = results["streaming"], results["naive"]
                print(
                    f"{backend:>10} streaming vs naive baseline: "
                    f"{n['seconds'] / s['seconds']:.1f}x faster, "
                    f"{n['peak_mb'] / s['peak_mb']:.1f}x less memory",
                    flush=True,
                )


if __name__ == "__main__":
    main()
