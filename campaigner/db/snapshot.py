"""Two read-only sessions that see one snapshot of the database, so a report can run its
independent queries at the same time (sqlite3 and psycopg release the GIL while the
database works) and still add up: a write committed while the report runs is in neither
session or in both, never in one section and not in the other.

PostgreSQL: the first session's REPEATABLE READ snapshot is exported and imported by the
second (`pg_export_snapshot()`, `SET TRANSACTION SNAPSHOT`). SQLite in WAL mode has no way
to share a snapshot between connections from Python, so a third connection holds the write
lock while both readers start: no commit can land between their first reads, hence both
read the last commit before the lock. That waits for a writer in the middle of a
transaction (up to the busy timeout; past it, or on a read-only file, the report reads in
one session), then keeps writers out for the instant the two readers take to start.
Databases that cannot share a snapshot (MariaDB, in-memory SQLite) get one session and no
helper: the report then runs its queries one after the other.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from campaigner.db.engine import READ_ONLY, read_only_session, sqlite_file

_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f]+(-[0-9A-Fa-f]+)+")


@contextmanager
def read_only_pair(engine: Engine) -> Iterator[tuple[Session, Session | None]]:
    """A read-only session and, where the database allows it, a helper at its snapshot."""
    dialect = engine.dialect.name
    if dialect == "postgresql":
        with _postgresql_pair(engine) as pair:
            yield pair
    elif dialect == "sqlite" and sqlite_file(str(engine.url)) is not None:
        with _sqlite_pair(engine) as pair:
            yield pair
    else:
        with read_only_session(engine) as session:
            yield session, None


@contextmanager
def _postgresql_pair(engine: Engine) -> Iterator[tuple[Session, Session]]:
    with ExitStack() as stack:
        first, second = (stack.enter_context(engine.connect()) for _ in range(2))
        for connection in (first, second):
            connection.execution_options(isolation_level="REPEATABLE READ", **{READ_ONLY: True})
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        snapshot = first.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
        if not _SNAPSHOT_ID.fullmatch(snapshot):
            raise RuntimeError(f"unexpected snapshot id {snapshot!r}")
        # A utility statement: it takes no bind parameters, hence the checked literal.
        second.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        with Session(bind=first) as leader, Session(bind=second) as helper:
            yield leader, helper
            helper.rollback()
            leader.rollback()


@contextmanager
def _sqlite_pair(engine: Engine) -> Iterator[tuple[Session, Session | None]]:
    with ExitStack() as stack:
        first, second = (stack.enter_context(engine.connect()) for _ in range(2))
        for connection in (first, second):
            _query_only(connection, True)
            stack.callback(_query_only, connection, False)
        if not _start_together(engine, (first, second)):
            with Session(bind=first) as alone:
                yield alone, None
                alone.rollback()
            return
        with Session(bind=first) as leader, Session(bind=second) as helper:
            yield leader, helper
            helper.rollback()
            leader.rollback()


def _start_together(engine: Engine, readers: tuple[Connection, ...]) -> bool:
    """Start the readers' snapshots while holding the write lock; False, and no reader
    started, when the lock cannot be had (a read-only file, or a writer that kept it past
    the lock timeout): the report then reads in one session, as a single reader would."""
    lock = engine.raw_connection()
    try:
        cursor = lock.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")  # no commit can land until ROLLBACK below
        except sqlite3.OperationalError:
            return False
        try:
            for connection in readers:
                connection.exec_driver_sql("SELECT count(*) FROM sqlite_master").all()
        finally:
            cursor.execute("ROLLBACK")
        return True
    finally:
        lock.close()


def _query_only(connection: Connection, on: bool) -> None:
    """As `read_only_session` does: a write fails instead of happening, and the reader
    begins with a plain BEGIN (no write lock)."""
    connection.rollback()
    if on:
        connection.execution_options(**{READ_ONLY: True})
    connection.exec_driver_sql(f"PRAGMA query_only = {'ON' if on else 'OFF'}")
    connection.commit()
