"""CSV import of customers and orders: streamed, batched, idempotent, with a reject file.

A bad row never stops an import: it goes to the reject file with its line number and reason,
and every good row still loads. Re-running the same file writes nothing.

What stops an import (the database lost or refusing a batch, Ctrl-C) stops it between whole
batches: each batch is one transaction. The error names the lines not written and what was
committed before them, counted only once a batch's commit returned, as the progress is.
Ctrl-C cancels the statement the writer thread is in (it may be waiting on a lock for as long
as another transaction holds it), so the import stops at once and that batch rolls back.
Ctrl-C after the last batch, while value segments are recomputed, or a database error there,
leaves every row committed and the segments as they were (`SegmentsInterrupted`).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import Clock, SystemClock
from campaigner.config import CustomerDefaults
from campaigner.customers.csvfile import CsvFile, open_csv
from campaigner.customers.fields import (
    CUSTOMER_FIELDS,
    ITEM_FILE_FIELDS,
    ORDER_FIELDS,
    is_field,
)
from campaigner.customers.headers import SPELLINGS, field_for, preferred_header
from campaigner.customers.loader import (
    CustomerBatch,
    LoadResult,
    load_customers,
    load_items,
    load_orders,
    prepare_customers,
    refresh_customer_stats,
    write_customers,
)
from campaigner.customers.records import RowError, customer_row, order_row
from campaigner.customers.writer import BatchWriter
from campaigner.errors import CampaignerError, one_line
from campaigner.segments.daily import rescore_loaded
from campaigner.segments.rfm_map import SegmentMap
from campaigner.spreadsheets import SpreadsheetWriter

# Rows per transaction: at 1,000 a batch's fixed costs (statements, commit, the WAL pages
# of ten indexes) were an eighth of a SQLite import; 5,000 keeps memory flat all the same.
BATCH_SIZE = 5000
KIND_FIELDS = {"customers": CUSTOMER_FIELDS, "orders": ORDER_FIELDS, "items": ITEM_FILE_FIELDS}
LOADERS: dict[str, Callable[..., LoadResult]] = {
    "customers": load_customers,
    "orders": load_orders,
    "items": load_items,
}
SHORTENED_EXAMPLES = 3  # lines named in the summary; the count covers the rest
REJECTED_EXAMPLES = 3  # lines named per kind of rejection; the reject file has them all
# A reason may name a value unquoted (a currency code, a year), which `rejection_kind` cannot
# take out: the summary lists the commonest kinds and counts the rest as one, and kinds past
# MAX_KINDS_COUNTED are counted with those from the start, so neither grows with the file.
MAX_KINDS_SHOWN = 20
MAX_KINDS_COUNTED = 1000
OTHER_KINDS = "other reasons (see the reject file)"
# A value quoted in a reason (Python's repr of it, either quote), left out of its kind.
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_LINE = re.compile(r"\bline \d+")

__all__ = [
    "CUSTOMER_FIELDS",
    "ITEM_FILE_FIELDS",
    "ORDER_FIELDS",
    "ImportInterrupted",
    "ImportReport",
    "ImportStopped",
    "RowError",
    "SegmentsInterrupted",
    "customer_row",
    "import_csv",
    "order_row",
    "refresh_customer_stats",
]


@dataclass
class ImportReport:
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    reject_file: Path | None = None
    # Per kind of rejection (`rejection_kind`): how many rows, and the first few lines.
    reasons: dict[str, int] = field(default_factory=dict)
    reason_lines: dict[str, list[int]] = field(default_factory=dict)
    # Batches whose transaction committed: how many, their rows written, their lines.
    batches: int = 0
    committed_rows: int = 0
    committed_lines: tuple[int, int] = (0, 0)
    columns: dict[str, str] = field(default_factory=dict)  # header -> field it was read as
    unmapped: list[str] = field(default_factory=list)  # headers not read at all
    encoding: str = "utf-8-sig"
    stopped: str | None = None  # why the file was imported only in part
    shortened: int = 0  # values fitted to their columns, their rows imported
    # The first few of them, "line N: why", for the summary.
    shortened_examples: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"{self.rows} rows: {self.inserted} new, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.rejected} rejected"
        )
        if self.rejected and self.reject_file:
            text += f" (see {self.reject_file})"
        if self.unmapped:
            text += f"; column(s) not imported: {', '.join(map(repr, self.unmapped))}"
        if self.shortened:
            more = self.shortened - len(self.shortened_examples)
            examples = "; ".join(self.shortened_examples) + (f"; {more} more" if more else "")
            text += f"; warning: {self.shortened} value(s) too long, shortened ({examples})"
        if self.stopped:
            text += f"; {self.stopped}"
        return text

    def rejections(self) -> list[str]:
        """One line per kind of rejection, the commonest first: how many, and where; past
        MAX_KINDS_SHOWN kinds, one line counts the rest."""
        kinds = sorted(
            ((kind, count) for kind, count in self.reasons.items() if kind != OTHER_KINDS),
            key=lambda item: -item[1],
        )
        lines = []
        for kind, count in kinds[:MAX_KINDS_SHOWN]:
            where = ", ".join(map(str, self.reason_lines.get(kind, [])))
            more = ", …" if count > len(self.reason_lines.get(kind, [])) else ""
            lines.append(f"{count:>7} × {kind} (line{'s' if count > 1 else ''} {where}{more})")
        rest = sum(count for _, count in kinds[MAX_KINDS_SHOWN:])
        rest += self.reasons.get(OTHER_KINDS, 0)
        if rest:
            lines.append(f"{rest:>7} × {OTHER_KINDS}")
        return lines

    def committed_summary(self) -> str:
        """What an import that stopped part-way left in the database."""
        if not self.batches:
            return "nothing was committed"
        first, last = self.committed_lines
        batches = "1 batch was" if self.batches == 1 else f"{self.batches} batches were"
        return f"{batches} committed whole: {self.committed_rows} rows, lines {first}–{last}"


def rejection_kind(reason: str) -> str:
    """A reason without the values it quotes, so that 400,000 bad phones are one kind of
    rejection in the summary, not 400,000 lines; each row's own reason is in the reject file."""
    return _LINE.sub("line …", _QUOTED.sub("…", reason))


class ImportStopped(CampaignerError):
    """The database did not write a batch; those before it are committed, whole."""

    def __init__(self, message: str, report: ImportReport) -> None:
        super().__init__(message)
        self.report = report


class ImportInterrupted(ImportStopped):
    """Ctrl-C: the import stopped after the batch being written; those before are committed."""


class SegmentsInterrupted(CampaignerError):
    """Ctrl-C, or a database error, while value segments were recomputed after the last
    batch: the import is complete and committed; the recomputation, one transaction, rolled
    back. Importing the file again would not redo it (nothing in it changes any more); the
    daemon's next segments pass does. On a shop without a first pass the recomputation is
    that pass over everybody, long enough to meet a lock timeout or a full disk. A
    CampaignerError, so that a caller that does not expect it still prints it as one line."""

    def __init__(self, path: Path, report: ImportReport, failure: str | None = None) -> None:
        stopped = (
            "interrupted after the import, while value segments were recomputed"
            if failure is None
            else f"value segments could not be recomputed after the import ({failure})"
        )
        super().__init__(
            f"{path}: {stopped}. The import itself finished: {report.committed_summary()}. "
            "The segments of the customers it touched were not updated; `campaigner run` "
            "updates them in its segments pass (when it starts, then every [segments] "
            "daily_interval)."
        )
        self.report = report
        self.exit_code = 130 if failure is None else 1


class _Rejects:
    """Writes rejected rows lazily: no reject file appears when nothing was rejected."""

    def __init__(self, path: Path, header: list[str]) -> None:
        self.path = path
        self.header = header
        self._file: io.TextIOWrapper | None = None
        self._writer: SpreadsheetWriter | None = None

    def add(self, line: int, reason: str, raw: Mapping[str, Any]) -> None:
        if self._writer is None:
            self._file = self.path.open("w", newline="", encoding="utf-8")
            self._writer = SpreadsheetWriter(self._file)
            self._writer.writerow(["line", "reason", *self.header])
        self._writer.writerow([line, reason, *(raw.get(name, "") for name in self.header)])

    def close(self) -> None:
        if self._file:
            self._file.close()


def _read(
    source: CsvFile,
) -> tuple[list[str], Iterator[tuple[int, list[str] | None, str | None]]]:
    """The header, and per record its line and cells, or why csv cannot read it."""
    records = source.rows()
    _, names, _ = next(records, (0, None, None))
    return list(names or []), records


def _no_header(
    path: Path, kind: str, records: Iterator[tuple[int, list[str] | None, str | None]]
) -> str:
    """Why a file whose first line is blank cannot be read: "no id column" would send the
    user looking for a column in a file that may have nothing at all."""
    example = "order_id,name,quantity" if kind == "items" else "external_id,phone"
    for line, cells, _ in records:
        if cells is None or any(cell.strip() for cell in cells):
            return (
                f"{path}: line 1 is blank: the header must be the first line "
                f"(e.g. {example}); the first line with data is line {line}"
            )
    noun = {"customers": "customer", "orders": "order"}.get(kind, "line item")
    return (
        f"{path}: the file is empty; expected a header line (e.g. {example}) and a row per {noun}"
    )


def _fields(
    records: Iterator[tuple[int, list[str] | None, str | None]],
    header: list[str],
    rename: Mapping[str, str],
) -> Iterator[tuple[int, dict[str, str], str | None]]:
    """Per record: its line, its values by field name, and why it cannot be read (or None)."""
    # Of two headers with one name the last wins, as in a dict of the row by header.
    positions = {name: index for index, name in enumerate(header)}
    read = [(positions[name], field) for name, field in rename.items() if name in positions]
    for line, cells, problem in records:
        if cells is None:
            yield line, {}, problem
        elif cells:
            width = len(cells)
            yield line, {field: cells[at] for at, field in read if at < width}, None


def import_csv(
    sessions: sessionmaker[Session],
    kind: str,
    path: Path,
    defaults: CustomerDefaults,
    *,
    mapping: Mapping[str, str] | None = None,
    strict: bool = False,
    reject_path: Path | None = None,
    progress: Callable[[int], None] | None = None,
    clock: Clock | None = None,
    encoding: str | None = None,
    keep_partial: bool = False,
    segment_map: SegmentMap | None = None,
    writer_thread: bool | None = None,
    rescore_segments: Callable[[Session, SegmentMap, datetime, str], object] = rescore_loaded,
) -> ImportReport:
    """Import `kind` ('customers', 'orders' or 'items': an order's line items, keyed by the
    order's id) from a CSV file; see the module docstring.

    `mapping` maps the file's header names to Campaigner field names; other headers are
    matched forgivingly (`headers.field_for`). A header that matches no field is named in the
    report, or with `strict` stops the import before anything is written. `progress` is
    called with the number of bytes read so far, for a progress bar. `encoding` None detects
    it (`csvfile.open_csv`). A file with a line that does not decode imports nothing, unless
    `keep_partial`: then the lines before it are imported and the report says where it stopped.
    With `segment_map`, value segments are rescored once after the last batch (not for
    items, which change no segment). `writer_thread` writes customer batches on a thread of
    their own (`customers.writer`); None: on PostgreSQL, as measured best (see below).
    `rescore_segments` is that recomputation, for a test to interrupt.
    """
    if kind not in KIND_FIELDS:
        raise ValueError(kind)
    source = open_csv(path, encoding)
    if source.failure is not None and not keep_partial:
        raise CampaignerError(
            f"{path}: {source.failure}; nothing was imported. Give the right --encoding, or "
            "--keep-partial to import the lines before it"
        )
    fields = KIND_FIELDS[kind]
    key = "order_id" if kind == "items" else "external_id"
    unknown_targets = sorted(
        target for target in set((mapping or {}).values()) if not is_field(target, fields)
    )
    if unknown_targets:
        raise CampaignerError(f"--map names unknown field(s): {', '.join(unknown_targets)}")
    header, records = _read(source)
    if not any(name.strip() for name in header):
        raise CampaignerError(_no_header(path, kind, records))
    renames, unmapped = match_headers(header, kind, mapping or {})
    if key not in renames.values():
        expected = "'order_id'" if kind == "items" else "'external_id' or 'id'"
        raise CampaignerError(
            f"{path}: no {'order id' if kind == 'items' else 'id'} column "
            f"(expected {expected}, or map one with --map)"
        )
    if unmapped and strict:
        raise CampaignerError(
            f"{path}: column(s) {', '.join(map(repr, unmapped))} match no {kind} field "
            f"(fields: {', '.join(fields)}); map them with --map HEADER=FIELD"
        )
    reject_file = reject_path or path.with_suffix(".rejects.csv")
    report = ImportReport(
        reject_file=reject_file, columns=renames, unmapped=unmapped, encoding=source.encoding
    )
    if source.failure is not None:
        report.stopped = f"stopped at {source.failure}: the lines before it were imported"
    rejects = _Rejects(reject_file, header)
    size_hint = path.stat().st_size
    bytes_seen = 0
    batch: list[tuple[int, dict[str, str]]] = []
    clock = clock or SystemClock()

    def reject(line: int, reason: str, raw: Mapping[str, str]) -> None:
        report.rejected += 1
        kind = rejection_kind(reason)
        if kind not in report.reasons and len(report.reasons) >= MAX_KINDS_COUNTED:
            kind = OTHER_KINDS
        report.reasons[kind] = report.reasons.get(kind, 0) + 1
        lines = report.reason_lines.setdefault(kind, [])
        if len(lines) < REJECTED_EXAMPLES:
            lines.append(line)
        inverse = {v: k for k, v in renames.items()}
        rejects.add(line, reason, {inverse.get(k, k): v for k, v in raw.items()})

    def noted(result: LoadResult, lines: list[tuple[int, dict[str, str]]]) -> None:
        """A batch's rejected rows and shortened values, into the report and reject file."""
        for error in result.errors:
            line, raw = lines[error.index]
            reject(line, error.reason, raw)
        for warning in result.warnings:
            report.shortened += 1
            if len(report.shortened_examples) < SHORTENED_EXAMPLES:
                report.shortened_examples.append(
                    f"line {lines[warning.index][0]}: {warning.reason}"
                )

    def committed(result: LoadResult, lines: _Lines) -> None:
        """A batch's transaction committed: its rows count, and the progress moves."""
        report.inserted += result.inserted
        report.updated += result.updated
        report.unchanged += result.unchanged
        report.batches += 1
        report.committed_rows += result.accepted
        report.committed_lines = (report.committed_lines[0] or lines.first, lines.last)
        if progress:
            progress(min(lines.bytes_read, size_hint))

    def not_written(lines: _Lines, exc: SQLAlchemyError) -> ImportStopped:
        return ImportStopped(
            f"{path}: lines {lines.first}–{lines.last} were not written ({one_line(exc)}); "
            f"before them, {report.committed_summary()}. Importing the file again completes it.",
            report,
        )

    writing: list[Any] = []  # the writer thread's connection while its statements run

    def write(prepared: tuple[CustomerBatch, datetime, _Lines]) -> None:
        customers, now, lines = prepared
        try:
            with sessions.begin() as session:
                writing.append(session.connection().connection.dbapi_connection)
                try:
                    result = write_customers(session, customers, defaults, now=now)
                finally:
                    writing.clear()
        except SQLAlchemyError as exc:
            raise not_written(lines, exc) from exc
        committed(result, lines)

    # On PostgreSQL customers are prepared here and written by the writer's thread meanwhile,
    # the server working on the other core. SQLite works in this process, and its
    # executemany gives up the GIL at each row: with a reader thread wanting it, each row
    # waited for it back (a 200k-row import took 12 % more CPU). Orders and items look up
    # what earlier batches wrote as they are read, so they are written in turn.
    if writer_thread is None:
        writer_thread = _dialect(sessions) == "postgresql"
    threaded = kind == "customers" and writer_thread
    writer = BatchWriter(write) if threaded else None

    def flush() -> None:
        if not batch:
            return
        lines = _Lines(batch[0][0], batch[-1][0], bytes_seen)
        if writer is not None:
            customers = prepare_customers([raw for _, raw in batch], defaults)
            noted(customers.result, batch)
            writer.put((customers, clock.now(), lines))
        else:
            load = LOADERS[kind]
            try:
                with sessions.begin() as session:
                    result = load(session, [raw for _, raw in batch], defaults, now=clock.now())
            except SQLAlchemyError as exc:
                raise not_written(lines, exc) from exc
            noted(result, batch)
            committed(result, lines)
        batch.clear()

    orders = _OrderRuns() if kind == "items" else None
    try:
        with writer or nullcontext():
            try:
                for line, raw, problem in _fields(records, header, renames):
                    report.rows += 1
                    if problem is None and orders is not None:
                        problem = orders.problem(line, raw.get("order_id", "").strip())
                    if problem is not None:
                        reject(line, problem, raw)
                        continue
                    # An order's item lines are loaded together: a batch ends between orders.
                    if len(batch) >= BATCH_SIZE and (
                        orders is None or batch[-1][1].get("order_id") != raw.get("order_id")
                    ):
                        flush()
                    bytes_seen += sum(map(len, raw.values())) + len(raw)
                    batch.append((line, raw))
                flush()
            except KeyboardInterrupt:
                if writer is not None:
                    writer.cancel()  # none of the batches queued is begun
                    for connection in list(writing):
                        _cancel_statement(connection)
                raise
        if progress:
            progress(size_hint)
    except KeyboardInterrupt:
        raise ImportInterrupted(
            f"{path}: interrupted; {report.committed_summary()}. Importing the file again "
            "completes it.",
            report,
        ) from None
    finally:
        rejects.close()
    # Line items change no value segment: only customers and orders rescore.
    if not report.rejected:
        report.reject_file = None
    if segment_map is not None and kind != "items" and (report.inserted or report.updated):
        try:
            with sessions.begin() as session:
                rescore_segments(session, segment_map, clock.now(), defaults.currency)
        except KeyboardInterrupt:
            raise SegmentsInterrupted(path, report) from None
        except SQLAlchemyError as exc:
            raise SegmentsInterrupted(path, report, one_line(exc)) from exc
    return report


@dataclass(frozen=True)
class _Lines:
    """A batch's first and last line, and how far into the file it reaches (for progress)."""

    first: int
    last: int
    bytes_read: int


def _cancel_statement(connection: Any) -> None:
    """Ask the server to cancel what `connection` runs (psycopg's `cancel_safe`, callable from
    another thread): the statement fails, its transaction rolls back. A connection idle by
    then ignores it."""
    cancel = getattr(connection, "cancel_safe", None)
    if cancel is not None:
        with suppress(Exception):  # the connection may be gone already: nothing to cancel
            cancel()


def _dialect(sessions: sessionmaker[Session]) -> str:
    with sessions() as session:  # a session connects only when it first runs something
        return session.get_bind().dialect.name


class _OrderRuns:
    """Item lines of one order must come together (as every shop's export writes them):
    they replace the order's items as one. A line of an order already passed is refused
    rather than split from the rest."""

    def __init__(self) -> None:
        self.first_line: dict[str, int] = {}
        self.current = ""

    def problem(self, line: int, order: str) -> str | None:
        if order == self.current or not order:
            return None
        if order in self.first_line:
            return (
                f"lines of order {order!r} must be together: its lines start at line "
                f"{self.first_line[order]}"
            )
        self.first_line[order] = line
        self.current = order
        return None


def match_headers(
    header: list[str], kind: str, mapping: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """Header -> field for the columns read, and the headers that match no field.

    `mapping` (from --map) wins; a field named by two headers is read from the one spelled
    most like it (`headers.preferred_header`: `sku` before «کد کالا»): a file holding a
    field's own name and an alias of it reads the one named, wherever it stands.
    """
    wanted = {column: mapping.get(column) or field_for(column, kind) for column in header}
    readers: dict[str, str] = {}
    for target in dict.fromkeys(t for t in wanted.values() if t is not None):
        columns = [column for column, t in wanted.items() if t == target]
        named = [column for column in columns if column in mapping]
        known = target in SPELLINGS[kind].values()  # not a customer's own `date:<name>`
        preferred = preferred_header(columns, target, kind) if known else None
        readers[target] = named[0] if named else preferred or columns[0]
    renames = {column: target for target, column in readers.items()}
    renames = {column: renames[column] for column in header if column in renames}
    unmapped = [column for column in header if column not in renames]
    return renames, unmapped
