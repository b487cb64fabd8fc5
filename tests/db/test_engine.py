"""Engine set-up: the health ping, and SQLite's wait for another writer."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from campaigner.db import create_engine_for, read_only_session, upgrade
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


def test_a_report_reads_while_a_writer_holds_the_sqlite_lock(tmp_path: Path) -> None:
    """A long report must neither wait for the dispatcher's batch nor hold it up."""
    path = tmp_path / "campaigner.db"
    engine = create_engine_for(f"sqlite:///{path}", lock_timeout=0.2)
    upgrade(engine)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with read_only_session(engine) as session:
            assert session.execute(text("select count(*) from messages")).scalar_one() == 0
    finally:
        holder.rollback()
        holder.close()
        engine.dispose()


def test_a_read_only_session_refuses_writes_and_leaves_the_pool_writable(engine: Engine) -> None:
    insert = text(
        "INSERT INTO opt_outs (phone, source, reason, created_at)"
        " VALUES ('+989121234567', 'test', '', CURRENT_TIMESTAMP)"
    )
    with pytest.raises(DBAPIError, match=r"(?i)read.?only"), read_only_session(engine) as session:
        session.execute(insert)
    with engine.begin() as connection:  # the same pooled connection, writable again
        connection.execute(insert)
    with read_only_session(engine) as session:
        assert session.execute(text("select count(*) from opt_outs")).scalar_one() == 1


def test_sqlite_file() -> None:
    assert sqlite_file("sqlite:////var/lib/campaigner/campaigner.db") == Path(
        "/var/lib/campaigner/campaigner.db"
    )
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("postgresql+psycopg://u@h/db") is None
