"""Portable INSERT … ON CONFLICT for the databases the ledger supports (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import Any

from sqlalchemy import Column, MetaData, Table, and_, false, func, literal_column, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnClause
from sqlalchemy.sql.schema import ScalarElementColumnDefault

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

    A row that leaves a column out says nothing about it: a new row takes the column's
    default, a stored one keeps its value. Rows with other columns than the row before them
    go in a statement of their own (one statement is compiled for one set of columns).
    """
    runs = _runs(rows)
    if len(runs) > 1:
        parts = [
            upsert(bind, table, run, key, update, also_set=also_set, newer=newer) for run in runs
        ]
        return Upserted(sum(p.inserted for p in parts), sum(p.updated for p in parts))
    if not rows:
        return Upserted()
    update = [name for name in update if name in rows[0]]
    dialect = bind.get_bind().dialect.name if isinstance(bind, Session) else bind.dialect.name
    stmt = _insert_for(dialect, table)
    staged = _Staging(table, list(rows[0])) if dialect == "postgresql" else None
    if staged is not None:
        stmt = stmt.from_select(staged.names, select(staged.table))
    values = {name: stmt.excluded[name] for name in (*update, *also_set)}
    changed = [table.c[name].is_distinct_from(stmt.excluded[name]) for name in update]
    where = or_(false(), *changed)
    if newer is not None:
        stored, given = table.c[newer], stmt.excluded[newer]
        values[newer] = func.coalesce(given, stored)
        changed = [
            and_(given.is_not(None), stored.is_distinct_from(given)) if name == newer else test
            for name, test in zip(update, changed, strict=True)
        ]
        where = and_(
            or_(false(), *changed), or_(given.is_(None), stored.is_(None), stored <= given)
        )
    stmt = stmt.on_conflict_do_update(index_elements=[table.c[key]], set_=values, where=where)
    if staged is not None:  # PostgreSQL
        staged.fill(bind, rows)
        fresh = [bool(row[0]) for row in bind.execute(stmt.returning(_PG_INSERTED))]
        staged.drop(bind)
        inserted = sum(fresh)
        return Upserted(inserted, len(fresh) - inserted)
    largest = bind.execute(select(func.max(table.c.id))).scalar() or 0
    plain = _sqlite_executemany(bind, stmt, table, rows)
    if plain is None:
        ids = [row[0] for row in bind.execute(stmt.returning(table.c.id), list(rows))]
        inserted = sum(1 for number in ids if number > largest)
        return Upserted(inserted, len(ids) - inserted)
    # The rows written (inserted or changed) are summed by sqlite3's executemany; the new
    # ones are those past the largest id before, as above.
    new = bind.execute(select(func.count()).where(table.c.id > largest)).scalar() or 0
    return Upserted(new, plain - new)


def _sqlite_executemany(
    bind: Session | Connection, stmt: Any, table: Table, rows: Sequence[dict[str, Any]]
) -> int | None:
    """Run the one-row statement through sqlite3's executemany with values converted column
    by column, and return how many rows it wrote; None when a column left out has a computed
    default, which only SQLAlchemy's own execution knows how to fill.

    SQLAlchemy's multi-row path prepared every parameter of every row in Python (defaults,
    bind processors, one dict per row): over a third of a large import's time.
    """
    names = list(rows[0])
    dialect = bind.get_bind().dialect if isinstance(bind, Session) else bind.dialect
    compiled = stmt.compile(dialect=dialect, column_keys=names)
    columns: list[list[Any]] = []
    for name in compiled.positiontup or ():
        column = table.c.get(name)
        if column is None:  # a parameter of the statement's own, not a column value
            return None
        if name in rows[0]:
            values = [row[name] for row in rows]
        elif isinstance(column.default, ScalarElementColumnDefault):
            values = [column.default.arg] * len(rows)
        else:
            return None
        process = column.type.bind_processor(dialect)
        columns.append(values if process is None else [process(value) for value in values])
    connection = bind.connection() if isinstance(bind, Session) else bind
    result = connection.exec_driver_sql(compiled.string, list(zip(*columns, strict=True)))
    return int(result.rowcount)


def _runs(rows: Sequence[dict[str, Any]]) -> list[Sequence[dict[str, Any]]]:
    """`rows` cut where a row's columns differ from the one before (in order: of two rows
    with one key, the later still wins). Usually one run: the rows themselves."""
    cuts = [i for i in range(1, len(rows)) if rows[i].keys() != rows[i - 1].keys()]
    if not cuts:
        return [rows]
    bounds = [0, *cuts, len(rows)]
    return [rows[start:end] for start, end in pairwise(bounds)]


class _Staging:
    """A temporary table holding one batch, filled by COPY, for one INSERT … SELECT.

    Rows went as one array per column (unnest) before, and psycopg built each array in Python
    value by value: a third of a PostgreSQL import. COPY formats the rows in psycopg's C code.
    The table lives for the statement (dropped after it, and at commit in any case).
    """

    def __init__(self, target: Table, names: list[str]) -> None:
        self.names = names
        self.target = target
        self.table = _staging_table(target, tuple(names))

    def fill(self, bind: Session | Connection, rows: Sequence[dict[str, Any]]) -> None:
        connection = bind.connection() if isinstance(bind, Session) else bind
        columns = ", ".join(connection.dialect.identifier_preparer.quote(n) for n in self.names)
        connection.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {self.table.name} ON COMMIT DROP AS "
            f"SELECT {columns} FROM {self.target.name} WITH NO DATA"
        )
        converted = _converted(connection.dialect, self.target, self.names, rows)
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {self.table.name} ({columns}) FROM STDIN") as copy:
            for row in zip(*converted, strict=True):
                copy.write_row(row)

    def drop(self, bind: Session | Connection) -> None:
        connection = bind.connection() if isinstance(bind, Session) else bind
        connection.exec_driver_sql(f"DROP TABLE {self.table.name}")


@lru_cache(maxsize=64)
def _staging_table(target: Table, names: tuple[str, ...]) -> Table:
    """One Table object per target and columns: a new one per batch made each batch's
    statement new to SQLAlchemy's statement cache, which grew by a compiled statement a batch."""
    columns = (Column(name, target.c[name].type) for name in names)
    return Table("campaigner_upsert_batch", MetaData(), *columns)


def _converted(
    dialect: Any, table: Table, names: list[str], rows: Sequence[dict[str, Any]]
) -> list[list[Any]]:
    """The rows' values column by column, as the columns' types bind them for `dialect`.

    A column holding one object in every row (a batch's `created_at`, a `None`) is bound
    once: UTC conversion of the same timestamp row after row was a tenth of the importer's
    CPU on PostgreSQL."""
    columns = []
    for name in names:
        values = [row[name] for row in rows]
        process = table.c[name].type.bind_processor(dialect)
        if process is not None:
            first = values[0]
            if all(value is first for value in values):
                values = [process(first)] * len(values)
            else:
                values = [process(value) for value in values]
        columns.append(values)
    return columns


def insert_ignore(bind: Session | Connection, table: Table, rows: Sequence[dict[str, Any]]) -> int:
    """Insert rows, silently skipping those that collide with a unique constraint."""
    if not rows:
        return 0
    dialect = bind.get_bind().dialect.name if isinstance(bind, Session) else bind.dialect.name
    stmt = _insert_for(dialect, table).on_conflict_do_nothing()
    return sum(_execute_values(bind, stmt, run) for run in _runs(rows))


def _execute_values(bind: Session | Connection, stmt: Any, rows: Sequence[dict[str, Any]]) -> int:
    """Executemany with RETURNING: SQLAlchemy batches it into multi-row statements from one
    cached compilation, and counting returned rows is exact on every driver, where rowcount
    is not."""
    result = bind.execute(stmt.returning(literal_column("1")), list(rows))
    return len(result.all())
