"""Engines configured the same way everywhere: the CLI, the daemon and the tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_LOCK_TIMEOUT = 30.0


def create_engine_for(
    url: str, *, echo: bool = False, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout of
    `lock_timeout` seconds (how long to wait for another writer)."""
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": lock_timeout}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, lock_timeout)
    return engine


def _configure_sqlite(engine: Engine, lock_timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(lock_timeout * 1000)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")  # a reader takes no lock: WAL gives a snapshot
            return
        # IMMEDIATE takes the write lock up front, so two writers queue instead of deadlocking.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


READ_ONLY = "campaigner_read_only"


@contextmanager
def read_only_session(engine: Engine) -> Iterator[Session]:
    """A session that only reads, for reports: on SQLite it never takes the write lock, so a
    long report does not hold up the dispatcher (and waits for no writer); on PostgreSQL the
    transaction is READ ONLY. Either way a write in it fails instead of happening."""
    with engine.connect() as connection:
        connection.execution_options(**{READ_ONLY: True})
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            connection.exec_driver_sql("PRAGMA query_only = ON")
            connection.commit()
        try:
            with Session(bind=connection) as session:
                if not sqlite:
                    session.execute(text("SET TRANSACTION READ ONLY"))
                yield session
                session.rollback()
        finally:
            if sqlite:
                connection.rollback()
                connection.exec_driver_sql("PRAGMA query_only = OFF")
                connection.commit()


def ping(engine: Engine) -> None:
    """Does the database answer? Asked outside any transaction, so that on SQLite it never
    waits for the write lock a long batch may hold: /healthz must answer at once."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("select 1")
        cursor.close()
    finally:
        connection.close()


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL (None for other databases and in-memory ones)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)
