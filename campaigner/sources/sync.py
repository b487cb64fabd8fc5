"""Sync one source: read new and changed rows from a shop database, load them in batches.

A source is read, never written: every connection is put in read-only mode. Rows are read in
keyset order of the cursor column (then the id), so each pass continues where the last one
stopped. Each batch is one transaction in Campaigner's database that loads the rows and
advances the cursor together: a batch lands whole or not at all, and a crash mid-sync only
means the next pass reads that batch again (loading is idempotent).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, TextClause, bindparam, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from campaigner.clock import Clock, SystemClock
from campaigner.config import Settings, SourceSettings, SourceTable
from campaigner.customers.fields import CUSTOMER_FIELDS, ITEM_SOURCE_FIELDS, ORDER_FIELDS
from campaigner.customers.headers import field_for, preferred_header
from campaigner.customers.loader import LoadResult, load_customers, load_orders
from campaigner.customers.records import as_text
from campaigner.db.models import SyncState
from campaigner.errors import CampaignerError, one_line
from campaigner.masking import mask
from campaigner.segments.daily import rescore_loaded

log = logging.getLogger(__name__)

KINDS = ("customers", "orders")  # customers first, so that new orders find their customer
MAX_KEPT_ERRORS = 1000
CONNECT_TIMEOUT_SECONDS = 10

Progress = Callable[[str, int, int | None], None]
"""Called with (kind, rows read so far, rows expected or None) after each batch."""


@dataclass(frozen=True)
class SourceRowError:
    kind: str
    row_id: str
    reason: str

    def __str__(self) -> str:
        return f"{self.kind} {self.row_id}: {self.reason}"


@dataclass
class KindReport:
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0  # older than what a shop webhook brought meanwhile: not written
    rejected: int = 0
    shortened: int = 0  # values fitted to their columns; their rows were loaded


@dataclass
class SyncReport:
    source: str
    kinds: dict[str, KindReport] = field(default_factory=dict)
    errors: list[SourceRowError] = field(default_factory=list)
    warnings: list[SourceRowError] = field(default_factory=list)  # the first MAX_KEPT_ERRORS
    unmapped: dict[str, list[str]] = field(default_factory=dict)  # kind -> columns not read

    def summary(self) -> str:
        parts = [
            f"{kind} {k.read} read: {k.inserted} new, {k.updated} updated, "
            f"{k.unchanged} unchanged, "
            + (f"{k.stale} stale, " if k.stale else "")
            + f"{k.rejected} rejected"
            + (f", warning: {k.shortened} value(s) too long, shortened" if k.shortened else "")
            for kind, k in self.kinds.items()
        ]
        parts += [
            f"{kind} column(s) not read: {', '.join(map(repr, columns))}"
            for kind, columns in self.unmapped.items()
        ]
        return f"{self.source}: " + "; ".join(parts or ["nothing to sync"])


class SyncFailed(CampaignerError):
    """A sync stopped part-way; batches before the failure are loaded and remembered."""

    def __init__(self, message: str, report: SyncReport) -> None:
        super().__init__(message)
        self.report = report


def source_named(settings: Settings, name: str) -> SourceSettings:
    for source in settings.sources:
        if source.name == name:
            return source
    known = ", ".join(source.name for source in settings.sources) or "none configured"
    raise CampaignerError(f"no source named {name!r} (sources: {known})")


def interval(source: SourceSettings) -> timedelta:
    """How often the daemon syncs this source."""
    return timedelta(seconds=source.interval)


def sync_source(
    sessions: sessionmaker[Session],
    source: SourceSettings,
    settings: Settings,
    *,
    full: bool = False,
    progress: Progress | None = None,
    clock: Clock | None = None,
) -> SyncReport:
    """Load what changed in `source` since the last pass (everything with `full`).

    Raises CampaignerError when the source cannot be reached or read (the host is named, the
    password never), and SyncFailed when a batch could not be written.
    """
    report = SyncReport(source.name)
    with source_connection(source) as connection:
        for sync_pass in _passes(connection, sessions, source, settings, report):
            sync_pass.run(full=full, progress=progress, clock=clock or SystemClock())
    if any(kind.inserted or kind.updated for kind in report.kinds.values()):
        with sessions.begin() as session:
            rescore_loaded(
                session,
                settings.segments.segment_map,
                (clock or SystemClock()).now(),
                settings.customers.currency,
            )
    log.info("sync %s", report.summary())
    return report


@contextmanager
def source_connection(source: SourceSettings, timeout: float | None = None) -> Iterator[Connection]:
    """A read-only connection to `source`, closed with its engine after use. With `timeout`,
    connecting and each statement give up after that many seconds (`_timeouts`): a read made
    while a request waits must not wait on a database that hangs.

    Raises CampaignerError when the source cannot be reached (the host is named, the
    password never).
    """
    engine = _source_engine(source, timeout)
    try:
        with _connect(engine, source) as connection:
            yield connection
    finally:
        engine.dispose()


def _passes(
    connection: Connection,
    sessions: sessionmaker[Session],
    source: SourceSettings,
    settings: Settings,
    report: SyncReport,
) -> list[SourcePass]:
    """What to read, customers first: the preset's passes, or one per configured kind."""
    if source.preset == "woocommerce":
        from campaigner.sources.woocommerce import woocommerce_passes

        return woocommerce_passes(connection, sessions, source, settings, report)
    passes = []
    for kind in KINDS:
        spec: SourceTable | None = getattr(source, kind)
        if spec is not None:
            passes.append(SourcePass(connection, sessions, source, settings, kind, spec, report))
    return passes


def _where(source: SourceSettings) -> str:
    url = make_url(source.url.get_secret_value())
    if url.get_backend_name() == "sqlite":
        return url.database or "(memory)"
    return f"{url.host or 'localhost'}{f':{url.port}' if url.port else ''}"


def source_reason(exc: BaseException, source: SourceSettings) -> str:
    """A database error as one line (the first of the driver's message, which goes on with
    the statement, DETAIL and HINT lines), without the source's password."""
    text = one_line(exc)
    password = make_url(source.url.get_secret_value()).password
    return mask(text.replace(str(password), "********") if password else text)


# The drivers Campaigner installs, for a URL that names none: SQLAlchemy's own defaults
# (MySQLdb, psycopg2) are not installed, and `mysql://user@host/wordpress` is how a shop
# owner writes it.
DRIVERS = {
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
    "postgresql": "postgresql+psycopg",
}


def _timeouts(backend: str, timeout: float) -> dict[str, Any]:
    """Driver arguments that bound connecting and each statement to `timeout` seconds.
    PyMySQL's read timeout covers the server's greeting too (without it, a server that
    accepts and never answers is waited for without end); PostgreSQL cancels a statement
    waiting on a lock past statement_timeout, and libpq counts connect_timeout in whole
    seconds, 2 at least; SQLite waits for a writer's lock as long as its timeout."""
    if backend in ("mysql", "mariadb"):
        return {"connect_timeout": timeout, "read_timeout": timeout, "write_timeout": timeout}
    if backend == "postgresql":
        return {
            "connect_timeout": max(2, round(timeout)),
            "options": f"-c statement_timeout={round(timeout * 1000)}",
        }
    return {"timeout": timeout}


def _source_engine(source: SourceSettings, timeout: float | None = None) -> Engine:
    url = make_url(source.url.get_secret_value())
    url = url.set(drivername=DRIVERS.get(url.drivername, url.drivername))
    backend = url.get_backend_name()
    connect_args: dict[str, Any] = {}
    if backend == "sqlite":
        if not url.database or not Path(url.database).is_file():
            raise CampaignerError(f"source {source.name!r}: no SQLite file at {_where(source)}")
    elif backend in ("mysql", "mariadb", "postgresql"):
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    if timeout is not None:
        connect_args.update(_timeouts(backend, timeout))
    try:
        engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
    except (ImportError, NoSuchModuleError) as exc:
        raise CampaignerError(
            f"source {source.name!r}: no database driver for {url.drivername!r} ({exc}); "
            "use mysql+pymysql://, postgresql+psycopg:// or sqlite:///"
        ) from None

    @event.listens_for(engine, "connect")
    def _read_only(dbapi_connection: Any, _record: Any) -> None:
        statement = {
            "sqlite": "PRAGMA query_only = ON",
            "mysql": "SET SESSION TRANSACTION READ ONLY",
            "mariadb": "SET SESSION TRANSACTION READ ONLY",
            "postgresql": "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
        }.get(engine.dialect.name)
        if statement:
            cursor = dbapi_connection.cursor()
            cursor.execute(statement)
            cursor.close()
            dbapi_connection.commit()

    return engine


def _connect(engine: Engine, source: SourceSettings) -> Connection:
    try:
        return engine.connect()
    except DBAPIError as exc:
        reason = source_reason(exc, source)
        raise CampaignerError(
            f"source {source.name!r}: cannot connect to {_where(source)}: {reason}"
        ) from None


def _dump(value: Any) -> dict[str, Any]:
    """A cursor value as JSON, keeping its type so it binds back as the same type."""
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, bool | int | float | str):
        return {"value": value}
    return {"value": as_text(value)}


def _load(stored: Mapping[str, Any]) -> Any:
    if "datetime" in stored:
        return datetime.fromisoformat(stored["datetime"])
    if "date" in stored:
        return date.fromisoformat(stored["date"])
    if "decimal" in stored:
        return Decimal(stored["decimal"])
    return stored["value"]


class SourcePass:
    """One kind (customers or orders) of one source, read batch after batch.

    Subclasses (a shop preset) change what is read (`relation`) and how a batch of rows
    becomes records (`records`); batching, the cursor and loading stay the same.
    """

    def __init__(
        self,
        connection: Connection,
        sessions: sessionmaker[Session],
        source: SourceSettings,
        settings: Settings,
        kind: str,
        spec: SourceTable,
        report: SyncReport,
        *,
        stream: str = "",
    ) -> None:
        self.connection = connection
        self.sessions = sessions
        self.source = source
        self.settings = settings
        self.kind = kind
        self.spec = spec
        self.report = report
        self.fields = CUSTOMER_FIELDS if kind == "customers" else ORDER_FIELDS
        self.columns = spec.field_columns(self.fields)
        self.id_column = self.columns.get("external_id", "external_id")
        self.cursor_column = spec.cursor or self.id_column
        self.zone = ZoneInfo(source.timezone or settings.customers.timezone)
        self.state_name = f"source:{source.name}:{kind}" + (f":{stream}" if stream else "")
        self.stats = report.kinds.setdefault(kind, KindReport())

    def run(self, *, full: bool, progress: Progress | None, clock: Clock) -> None:
        self._find_id_column()
        position = None if full else self._stored_position()
        total = self._count(position) if progress else None
        if progress:
            progress(self.kind, 0, total)
        while True:
            rows = self._read(position)
            if not rows:
                break
            records, row_ids = self.records(rows)
            last = rows[-1]
            position = (
                last[self._key(last, self.cursor_column)],
                last[self._key(last, self.id_column)],
            )
            try:
                with self.sessions.begin() as session:
                    result = self._load(session, records, clock)
                    self._save_position(session, position, clock)
            except SQLAlchemyError as exc:
                reason = source_reason(exc, self.source)
                raise SyncFailed(
                    f"source {self.source.name!r} {self.kind}: a batch of {len(rows)} rows "
                    f"starting at id {row_ids[0]} could not be written, nothing of it was "
                    f"loaded: {reason}",
                    self.report,
                ) from exc
            self._count_result(result, row_ids)
            if progress:
                progress(self.kind, self.stats.read, total)
            if len(rows) < self.source.batch_size:
                break

    def _load(self, session: Session, records: list[dict[str, Any]], clock: Clock) -> LoadResult:
        defaults = self.settings.customers
        if self.kind == "customers":
            return load_customers(
                session,
                records,
                defaults,
                now=clock.now(),
                birthday_format=self.spec.birthday_format,
            )
        return load_orders(session, records, defaults, now=clock.now(), local_zone=self.zone.key)

    def _count_result(self, result: LoadResult, row_ids: list[str]) -> None:
        self.stats.read += len(row_ids)
        self.stats.inserted += result.inserted
        self.stats.updated += result.updated
        self.stats.unchanged += result.unchanged
        self.stats.stale += result.stale
        self.stats.rejected += len(result.errors)
        for error in result.errors:
            problem = SourceRowError(self.kind, row_ids[error.index], error.reason)
            log.warning("source %s: rejected %s", self.source.name, problem)
            if len(self.report.errors) < MAX_KEPT_ERRORS:
                self.report.errors.append(problem)
        for warning in result.warnings:
            self.stats.shortened += 1
            problem = SourceRowError(self.kind, row_ids[warning.index], warning.reason)
            log.warning("source %s: loaded %s", self.source.name, problem)
            if len(self.report.warnings) < MAX_KEPT_ERRORS:
                self.report.warnings.append(problem)

    # Reading the source

    def relation(self) -> str:
        quote = self.connection.dialect.identifier_preparer.quote
        if self.spec.query.strip():
            return f"({self.spec.query.strip().rstrip(';')}) AS campaigner_source"
        return ".".join(quote(part) for part in self.spec.table.strip().split("."))

    def _find_id_column(self) -> None:
        """Without `columns.id`, the id is the column named like one (`external_id`, `id`,
        `customer_id`, …, as CSV headers are matched), and the cursor too unless one is set."""
        if "external_id" in self.columns or self.id_column != "external_id":
            return
        with self._reading():
            result = self.connection.execute(text(f"SELECT * FROM {self.relation()} WHERE 1 = 0"))
            names = list(result.keys())
        found = preferred_header(names, "external_id", self.kind)
        if found is None:
            raise CampaignerError(
                f"source {self.source.name!r} {self.kind}: no id column among "
                f"{', '.join(map(repr, names))}; name it in [sources.{self.kind}.columns], "
                'e.g. id = "user_id"'
            )
        self.id_column = self.columns["external_id"] = found
        if not self.spec.cursor:
            self.cursor_column = found

    def _condition(self, position: tuple[Any, Any] | None) -> tuple[str, dict[str, Any]]:
        quote = self.connection.dialect.identifier_preparer.quote
        cursor, row_id = quote(self.cursor_column), quote(self.id_column)
        where = f"{cursor} IS NOT NULL"
        if position is None:
            return where, {}
        if self.cursor_column == self.id_column:
            return f"{where} AND {cursor} > :after", {"after": position[0]}
        return (
            f"{where} AND ({cursor} > :after OR ({cursor} = :after AND {row_id} > :after_id))",
            {"after": position[0], "after_id": position[1]},
        )

    def _read(self, position: tuple[Any, Any] | None) -> list[Mapping[str, Any]]:
        quote = self.connection.dialect.identifier_preparer.quote
        where, params = self._condition(position)
        order = quote(self.cursor_column)
        if self.cursor_column != self.id_column:
            order += ", " + quote(self.id_column)
        sql = f"SELECT * FROM {self.relation()} WHERE {where} ORDER BY {order} LIMIT :limit"
        rows = self.query(sql, {**params, "limit": self.source.batch_size})
        if rows:
            for column in (self.id_column, self.cursor_column):
                self._key(rows[0], column)
        return rows

    def _count(self, position: tuple[Any, Any] | None) -> int:
        where, params = self._condition(position)
        rows = self.query(f"SELECT COUNT(*) AS n FROM {self.relation()} WHERE {where}", params)
        return int(next(iter(rows[0].values())))

    def query(self, sql: str | TextClause, params: dict[str, Any]) -> list[Mapping[str, Any]]:
        statement = text(sql) if isinstance(sql, str) else sql
        with self._reading():
            return [dict(row) for row in self.connection.execute(statement, params).mappings()]

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """One read, in a read-only transaction that ends with it (no snapshot is held); a
        database error becomes one line naming the source, never its password."""
        try:
            yield
        except DBAPIError as exc:
            self.connection.rollback()
            reason = source_reason(exc, self.source)
            raise CampaignerError(
                f"source {self.source.name!r} {self.kind}: reading failed: {reason}"
            ) from None
        self.connection.rollback()

    def _key(self, row: Mapping[str, Any], column: str) -> str:
        """The result key for `column`; databases differ in the case they return."""
        if column in row:
            return column
        for key in row:
            if key.lower() == column.lower():
                return str(key)
        raise CampaignerError(
            f"source {self.source.name!r} {self.kind}: no column {column!r} in the result "
            f"(columns: {', '.join(map(str, row))})"
        )

    def _matched(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Field -> result key: the mapping first, then the column's own name, forgivingly."""
        keys = {str(key).lower(): key for key in row}
        wanted = {
            name: keys[column.lower()]
            for name, column in self.columns.items()
            if column.lower() in keys
        }
        for key in row:
            name = field_for(str(key), self.kind)
            if name and name not in wanted and name not in self.columns:
                wanted[name] = key
        unread = [
            str(key)
            for key in row
            if key not in wanted.values()
            and str(key).lower() not in (self.id_column.lower(), self.cursor_column.lower())
        ]
        if unread and self.kind not in self.report.unmapped:
            self.report.unmapped[self.kind] = unread
            if self.spec.strict:
                raise CampaignerError(
                    f"source {self.source.name!r} {self.kind}: column(s) "
                    f"{', '.join(map(repr, unread))} match no field; map them in "
                    f"[sources.{self.kind}.columns] or leave them out of the query"
                )
            log.warning("source %s %s: column(s) not read: %s", self.source.name, self.kind, unread)
        return wanted

    def records(self, rows: list[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
        """The records to load for a batch of rows, and the source id of each record."""
        keys = {str(key).lower(): key for key in rows[0]}
        wanted = self._matched(rows[0])
        cursor_key = keys[self.cursor_column.lower()]
        records = []
        for row in rows:
            record = {name: self._value(name, row[key]) for name, key in wanted.items()}
            if self.spec.cursor and isinstance(row[cursor_key], datetime):
                # A time cursor is when the row last changed: older data never overwrites it.
                record["shop_modified_at"] = self._value("", row[cursor_key])
            records.append(record)
        id_key = keys[self.id_column.lower()]
        if self.kind == "orders":
            records = self._with_items(rows, records)
        return records, [as_text(row[id_key]) for row in rows]

    def _with_items(
        self, rows: list[Mapping[str, Any]], records: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Each order record with its line items from `[sources.items]` (an order without
        any has none): read for the whole batch in one query, by order id."""
        spec = self.source.items
        if spec is None:
            return records
        quote = self.connection.dialect.identifier_preparer.quote
        columns = spec.field_columns(ITEM_SOURCE_FIELDS)
        order_column = columns.get("order_id", "order_id")
        order = quote(order_column)
        if "external_id" in columns:
            order += ", " + quote(columns["external_id"])
        relation = (
            f"({spec.query.strip().rstrip(';')}) AS campaigner_items"
            if spec.query.strip()
            else ".".join(quote(part) for part in spec.table.strip().split("."))
        )
        id_key = self._key(rows[0], self.id_column)
        statement = text(
            f"SELECT * FROM {relation} WHERE {quote(order_column)} IN :ids ORDER BY {order}"
        ).bindparams(bindparam("ids", expanding=True))
        lines = self.query(statement, {"ids": [row[id_key] for row in rows]})
        by_order: dict[str, list[dict[str, Any]]] = {}
        if lines:
            keys = {str(key).lower(): key for key in lines[0]}
            wanted = {
                name: keys[column.lower()]
                for name, column in columns.items()
                if column.lower() in keys and name != "external_id"
            }
            for key in lines[0]:
                name = field_for(str(key), "items")
                if name and name not in wanted and name not in columns:
                    wanted[name] = key
            if "order_id" not in wanted:
                raise CampaignerError(
                    f"source {self.source.name!r} items: no column {order_column!r} in the "
                    f"result; name the order id column in [sources.items.columns]"
                )
            for line in lines:
                item = {name: line[key] for name, key in wanted.items() if name != "order_id"}
                by_order.setdefault(as_text(line[wanted["order_id"]]), []).append(item)
        for row, record in zip(rows, records, strict=True):
            record["items"] = by_order.get(as_text(row[id_key]), [])
        return records

    def _value(self, name: str, value: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=self.zone)
        if name == "birthday" and isinstance(value, datetime):
            return value.date()
        if name == "status" and self.spec.status_values:
            return self.spec.status_values.get(as_text(value).strip(), value)
        if name == "marketing_consent" and self.spec.consent_values:
            return self.spec.consent_values.get(as_text(value).strip(), value)
        return value

    # The cursor, kept in Campaigner's database

    def _stored_position(self) -> tuple[Any, Any] | None:
        with self.sessions() as session:
            state = session.get(SyncState, self.state_name)
        if state is None or not state.cursor:
            return None
        return _load(state.cursor["cursor"]), _load(state.cursor["id"])

    def _save_position(self, session: Session, position: tuple[Any, Any], clock: Clock) -> None:
        cursor = {"cursor": _dump(position[0]), "id": _dump(position[1])}
        state = session.get(SyncState, self.state_name)
        if state is None:
            session.add(SyncState(name=self.state_name, cursor=cursor, updated_at=clock.now()))
        else:
            state.cursor = cursor
            state.updated_at = clock.now()
