"""Engine set-up: the health ping, and SQLite's wait for another writer."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from campaigner.db import create_engine_for, upgrade
from campaigner.db.engine import ping, sqlite_file


def test_ping_answers_on_both_databases(engine: Engine) -> None:
    ping(engine)


def test_ping_never_waits_for_the_sqlite_write_lock(tmp_path: Path) -> None:
    """/healthz pings the database; a long batch holding the write lock must not stall it."""
    path = tmp_path / "campaigner.db"
    engine = create_engine_for(f"sqlite:///{path}", lock_timeout=0.2)
    upgrade(engine)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        ping(engine)
        with pytest.raises(OperationalError, match="database is locked"), engine.begin() as c:
            c.execute(text("select 1"))  # a transaction, by contrast, waits and gives up
    finally:
        holder.rollback()
        holder.close()
        engine.dispose()


def test_sqlite_file() -> None:
    assert sqlite_file("sqlite:////var/lib/campaigner/campaigner.db") == Path(
        "/var/lib/campaigner/campaigner.db"
    )
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("postgresql+psycopg://u@h/db") is None
