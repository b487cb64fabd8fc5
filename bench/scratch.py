"""Throw-away databases for the benchmarks: a SQLite file or a fresh PostgreSQL database.

PostgreSQL is reached through CAMPAIGNER_BENCH_POSTGRES (an admin URL; default: the local
server the test suite uses). Database names start with `bench_` and the benchmark's name, so
runs of different benchmarks on one server do not collide.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, text

PG_ADMIN_URL = os.environ.get(
    "CAMPAIGNER_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ("sqlite", "postgresql")


def fresh_database(backend: str, name: str, workdir: Path) -> str:
    """The URL of a new, empty database called `name` (dropped first if it was left over)."""
    if backend == "sqlite":
        path = workdir / f"{name}.db"
        path.unlink(missing_ok=True)
        return f"sqlite:///{path}"
    drop_database(_pg_url(name))
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return _pg_url(name)


def drop_database(url: str) -> None:
    if not url.startswith("postgresql"):
        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
        return
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        name = url.rsplit("/", 1)[1]
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _pg_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
