"""Benchmark: CSV customer import — streaming, batched upserts vs a naive load-everything import.

Each variant runs in its own subprocess so that peak RSS is measured per variant.

    python bench/import_csv.py                 # 1,000,000 rows
    python bench/import_csv.py --rows 100000   # quicker
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


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
                    f"0912{i % 10_000_000:07d}",
                    f"{1960 + i % 40}-{1 + i % 12:02d}-{1 + i % 28:02d}",
                    "vip;app" if i % 5 == 0 else "",
                    "yes",
                ]
            )


def streaming(csv_path: Path, db: Path) -> None:
    from campaigner.config import CustomerDefaults
    from campaigner.customers.importer import import_csv
    from campaigner.db import create_engine_for, session_factory, upgrade

    engine = create_engine_for(f"sqlite:///{db}")
    upgrade(engine)
    report = import_csv(session_factory(engine), "customers", csv_path, CustomerDefaults())
    assert report.rejected == 0, report.summary()


def naive(csv_path: Path, db: Path) -> None:
    """What a first version would do: read the whole file, one ORM object per row."""
    from campaigner.config import CustomerDefaults
    from campaigner.customers.importer import customer_row
    from campaigner.db import create_engine_for, session_factory, upgrade
    from campaigner.db.models import Customer

    engine = create_engine_for(f"sqlite:///{db}")
    upgrade(engine)
    with csv_path.open(encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    defaults = CustomerDefaults()
    with session_factory(engine).begin() as session:
        for raw in records:
            raw["external_id"] = raw.pop("id")
            raw["marketing_consent"] = raw.pop("consent")
            session.add(Customer(**customer_row(raw, defaults)))


def child(variant: str, csv_path: str, db: str) -> None:
    start = time.perf_counter()
    {"streaming": streaming, "naive": naive}[variant](Path(csv_path), Path(db))
    elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": elapsed, "peak_mb": peak_mb}))


def run(variant: str, csv_path: Path, workdir: Path) -> dict[str, float]:
    db = workdir / f"{variant}.db"
    out = subprocess.run(
        [sys.executable, __file__, "--child", variant, str(csv_path), str(db)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        csv_path = workdir / "customers.csv"
        make_csv(csv_path, args.rows)
        size_mb = csv_path.stat().st_size / 2**20
        print(f"customers CSV: {args.rows:,} rows, {size_mb:.0f} MB")
        results = {variant: run(variant, csv_path, workdir) for variant in ("streaming", "naive")}
    for variant, figures in results.items():
        rate = args.rows / figures["seconds"]
        print(
            f"{variant:>9}: {figures['seconds']:7.1f} s  {rate:9,.0f} rows/s  "
            f"peak RSS {figures['peak_mb']:6.0f} MB"
        )
    s, n = results["streaming"], results["naive"]
    print(
        f"streaming vs naive baseline: {n['seconds'] / s['seconds']:.1f}x faster, "
        f"{n['peak_mb'] / s['peak_mb']:.1f}x less memory"
    )


if __name__ == "__main__":
    main()
