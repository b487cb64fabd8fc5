"""Portable INSERT … ON CONFLICT for the databases the ledger supports (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, literal_column, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from campaigner.errors import CampaignerError


def _insert_for(dialect: str, table: Table) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise CampaignerError(f"the ledger database must be SQLite or PostgreSQL, not {dialect}")


def upsert(
    bind: Session | Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    key: str | Sequence[str],
    update: Sequence[str],
    *,
    also_set: Sequence[str] = (),
) -> int:
    """Insert rows, or update `update` columns where `key` (a column, or the columns of a
    unique constraint) exists and something differs.

    `also_set` columns (such as updated_at) are written only along with a real change.
    Returns how many rows were inserted or actually changed, so a re-run of the same data
    reports (and writes) nothing.
    """
    if not rows:
        return 0
    dialect = bind.get_bind().dialect.name if isinstance(bind, Session) else bind.dialect.name
    stmt = _insert_for(dialect, table)
    changed = [table.c[name].is_distinct_from(stmt.excluded[name]) for name in update]
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c[name] for name in ([key] if isinstance(key, str) else key)],
        set_={name: stmt.excluded[name] for name in (*update, *also_set)},
        where=or_(*changed),
    )
    return _execute_values(bind, stmt, rows)


def insert_ignore(bind: Session | Connection, table: Table, rows: Sequence[dict[str, Any]]) -> int:
    """Insert rows, silently skipping those that collide with a unique constraint."""
    if not rows:
        return 0
    dialect = bind.get_bind().dialect.name if isinstance(bind, Session) else bind.dialect.name
    stmt = _insert_for(dialect, table).on_conflict_do_nothing()
    return _execute_values(bind, stmt, rows)


def _execute_values(bind: Session | Connection, stmt: Any, rows: Sequence[dict[str, Any]]) -> int:
    """Executemany with RETURNING: SQLAlchemy batches it into multi-row statements from one
    cached compilation, and counting returned rows is exact on every driver, where rowcount
    is not."""
    result = bind.execute(stmt.returning(literal_column("1")), list(rows))
    return len(result.all())
