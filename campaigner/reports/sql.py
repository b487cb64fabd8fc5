"""Date arithmetic that SQLite, PostgreSQL and MariaDB spell differently.

Reports do their counting in the database; these few expressions (and PostgreSQL's settings
for the report's transaction) are all that differs.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Date, Float, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class days_between(FunctionElement[float]):
    """Fractional days from the second datetime to the first."""

    type = Float()
    inherit_cache = True


class day_of(FunctionElement[Any]):
    """The UTC calendar day of a datetime."""

    type = Date()
    inherit_cache = True


class week_of(FunctionElement[Any]):
    """The Monday that starts the (UTC) week of a datetime."""

    type = Date()
    inherit_cache = True


def _args(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> list[str]:
    return [compiler.process(arg, **kw) for arg in element.clauses]


@compiles(days_between, "sqlite")
def _days_sqlite(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = _args(element, compiler, **kw)
    return f"(julianday({later}) - julianday({earlier}))"


@compiles(days_between, "postgresql")
def _days_postgresql(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = _args(element, compiler, **kw)
    return f"(EXTRACT(EPOCH FROM ({later} - {earlier})) / 86400.0)"


@compiles(days_between, "mysql")
def _days_mysql(element: days_between, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = _args(element, compiler, **kw)
    return f"(TIMESTAMPDIFF(MICROSECOND, {earlier}, {later}) / 86400000000.0)"


@compiles(day_of, "sqlite")
def _day_sqlite(element: day_of, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date({_args(element, compiler, **kw)[0]})"


@compiles(day_of)
def _day_default(element: day_of, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({_args(element, compiler, **kw)[0]} AS DATE)"


@compiles(week_of, "sqlite")
def _week_sqlite(element: week_of, compiler: SQLCompiler, **kw: Any) -> str:
    # 'weekday 0' moves forward to the next Sunday (or stays on one); six days back is Monday.
    return f"date({_args(element, compiler, **kw)[0]}, 'weekday 0', '-6 days')"


@compiles(week_of, "postgresql")
def _week_postgresql(element: week_of, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(date_trunc('week', {_args(element, compiler, **kw)[0]}) AS DATE)"


@compiles(week_of, "mysql")
def _week_mysql(element: week_of, compiler: SQLCompiler, **kw: Any) -> str:
    value = _args(element, compiler, **kw)[0]
    return f"DATE({value} - INTERVAL WEEKDAY({value}) DAY)"


class unindexed(FunctionElement[Any]):
    """The column itself; on SQLite, written `+column` so the planner scans the table instead
    of walking an index (the ledger's status or rule index) and fetching every row from it."""

    inherit_cache = True

    def __init__(self, column: ColumnElement[Any]) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(unindexed)
def _unindexed_default(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return _args(element, compiler, **kw)[0]


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return f"+{_args(element, compiler, **kw)[0]}"


def tune_for_aggregates(session: Session) -> None:
    """PostgreSQL, for the rest of the report's transaction: no JIT (compiling the report's
    big aggregates took 0.5–1.7 s each, longer than running them) and room to sort and hash
    a month of ledger rows in memory instead of spilling them to disk."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))
        session.execute(text("SET LOCAL work_mem = '64MB'"))
