"""Portable INSERT … ON CONFLICT for the databases the ledger supports (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, Table, and_, bindparam, func, literal_column, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnClause

from campaigner.errors import CampaignerError

# PostgreSQL: the row version written by the INSERT branch, not by ON CONFLICT DO UPDATE.
_PG_INSERTED: ColumnClause[bool] = literal_column("xmax = 0")


def _insert_for(dialect: str, table: Table) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise CampaignerError(f"the ledger database must be SQLite or PostgreSQL, not {dialect}")


@dataclass(frozen=True)
class Upserted:
    inserted: int = 0
    updated: int = 0


def upsert(
    bind: Session | Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    key: str,
    update: Sequence[str],
    *,
    also_set: Sequence[str] = (),
    newer: str | None = None,
) -> Upserted:
    """Insert rows, or update `update` columns where `key` exists and something differs.

    `also_set` columns (such as updated_at) are written only along with a real change.
    `newer` names a column holding when the source last changed the row: a row older than
    the stored one changes nothing (the test runs on the locked row, so a concurrent newer
    write always wins), and a row without one writes its data but keeps the stored time.
    Returns how many rows were inserted and how many actually changed, so a re-run of the same
    data reports (and writes) nothing. The statement itself tells the two apart: on
    PostgreSQL a freshly inserted row version has no `xmax`; on SQLite new rows take ids
    past the largest one (one index step to read, in the same write transaction).
    """
    if not rows:
        return Upserted()
    dialect = bind.get_bind().dialect.name if isinstance(bind, Session) else bind.dialect.name
    stmt = _insert_for(dialect, table)
    unnested = dialect == "postgresql" and _same_columns(rows)
    if unnested:
        stmt = stmt.from_select(list(rows[0]), _unnest(table, rows))
    values = {name: stmt.excluded[name] for name in (*update, *also_set)}
    changed = [table.c[name].is_distinct_from(stmt.excluded[name]) for name in update]
    where = or_(*changed)
    if newer is not None:
        stored, given = table.c[newer], stmt.excluded[newer]
        values[newer] = func.coalesce(given, stored)
        changed = [
            and_(given.is_not(None), stored.is_distinct_from(given)) if name == newer else test
            for name, test in zip(update, changed, strict=True)
        ]
        where = and_(or_(*changed), or_(given.is_(None), stored.is_(None), stored <= given))
    stmt = stmt.on_conflict_do_update(index_elements=[table.c[key]], set_=values, where=where)
    if dialect == "postgresql":
        statement = stmt.returning(_PG_INSERTED)
        result = bind.execute(statement) if unnested else bind.execute(statement, list(rows))
        fresh = [bool(row[0]) for row in result]
        inserted = sum(fresh)
        return Upserted(inserted, len(fresh) - inserted)
    largest = bind.execute(select(func.max(table.c.id))).scalar() or 0
    ids = [row[0] for row in bind.execute(stmt.returning(table.c.id), list(rows))]
    inserted = sum(1 for number in ids if number > largest)
    return Upserted(inserted, len(ids) - inserted)


def _same_columns(rows: Sequence[dict[str, Any]]) -> bool:
    first = rows[0].keys()
    return all(row.keys() == first for row in rows)


def _unnest(table: Table, rows: Sequence[dict[str, Any]]) -> Select[Any]:
    """The rows as one array per column, unnested on the server: a statement of a few
    parameters whatever the batch size. A multi-row VALUES list has one placeholder per
    value, and psycopg rewrote its thousands of placeholders in Python on every batch (the
    text is too long for its cache): a third of a PostgreSQL import."""
    names = list(rows[0])
    arrays = [
        bindparam(f"{name}_values", [row[name] for row in rows], type_=ARRAY(table.c[name].type))
        for name in names
    ]
    source = func.unnest(*arrays).table_valued(*names).render_derived(name="batch")
    return select(*(source.c[name] for name in names))


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
