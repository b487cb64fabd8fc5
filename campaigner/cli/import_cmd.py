"""`campaigner customers import` and `campaigner orders import`."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy.orm import Session

from campaigner.cli.context import AppContext, pass_app
from campaigner.customers.importer import (
    CUSTOMER_FIELDS,
    ITEM_FILE_FIELDS,
    ORDER_FIELDS,
    ImportInterrupted,
    ImportReport,
    ImportStopped,
    SegmentsInterrupted,
    import_csv,
)
from campaigner.display import shown
from campaigner.errors import CampaignerError
from campaigner.segments.daily import rescore_loaded
from campaigner.segments.rfm_map import SegmentMap


def _parse_map(pairs: tuple[str, ...]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        header, sep, target = pair.partition("=")
        if not sep or not header or not target:
            raise CampaignerError(f"--map {pair!r}: expected HEADER=FIELD, e.g. --map Mobile=phone")
        mapping[header] = target.strip()
    return mapping


def run_import(
    app: AppContext,
    kind: str,
    file: Path,
    maps: tuple[str, ...],
    rejects: Path | None,
    *,
    strict: bool = False,
    encoding: str | None = None,
    keep_partial: bool = False,
    rescore_segments: Callable[[Session, SegmentMap, datetime, str], object] = rescore_loaded,
    left_undone: str | None = None,
) -> ImportReport:
    """Import `file` and print its summary. `rescore_segments` is the recomputation of value
    segments after the last batch (`import_csv`), for a test to interrupt. `left_undone`
    says what a stop of this import leaves undone besides (the items file after its orders),
    after what the stop says of `file`."""

    def said(exc: Exception) -> str:
        return f"{exc} {left_undone}" if left_undone else str(exc)

    sessions = app.sessions()
    try:
        with Progress(
            TextColumn("{task.description}", style="progress.description", markup=False),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            transient=True,
            disable=not sys.stderr.isatty(),
        ) as progress:
            # The bar moves as batches commit, not as they are read.
            task = progress.add_task(
                f"{kind} committed", total=file.stat().st_size if file.exists() else None
            )
            report = import_csv(
                sessions,
                kind,
                file,
                app.settings.customers,
                mapping=_parse_map(maps),
                strict=strict,
                reject_path=rejects,
                progress=lambda done: progress.update(task, completed=done),
                encoding=encoding,
                keep_partial=keep_partial,
                segment_map=app.settings.segments.segment_map,
                rescore_segments=rescore_segments,
            )
    except ImportInterrupted as exc:
        click.echo(shown(said(exc)), err=True)
        raise click.exceptions.Exit(130) from None
    except ImportStopped as exc:
        if left_undone is None:
            raise
        raise ImportStopped(said(exc), exc.report) from exc
    except SegmentsInterrupted as exc:
        # The rows are in: their summary is as true as after a finished import.
        _print_summary(file, exc.report, encoding)
        click.echo(shown(said(exc)), err=True)
        raise click.exceptions.Exit(exc.exit_code) from None
    _print_summary(file, report, encoding)
    return report


def run_imports(
    app: AppContext,
    kind: str,
    file: Path | None,
    items: Path | None,
    maps: tuple[str, ...],
    rejects: Path | None,
    *,
    strict: bool = False,
    encoding: str | None = None,
    keep_partial: bool = False,
    rescore_segments: Callable[[Session, SegmentMap, datetime, str], object] = rescore_loaded,
) -> None:
    """Import `file`, then the orders' line items in `items` (either may be None); exit 1
    when either stopped part-way or rejected every row. A stop in `file` (Ctrl-C, a database
    error) leaves `items` unread, and says so: the items come after their orders."""
    if file is None and items is None:
        raise click.UsageError("give an orders FILE, --items FILE, or both")
    items_undone = (
        None if items is None else _items_not_imported(app, items, strict, encoding, keep_partial)
    )
    failed = False
    for what, path in ((kind, file), ("items", items)):
        if path is None:
            continue
        first = what == kind
        report = run_import(
            app,
            what,
            path,
            maps if first else (),
            rejects if first else None,
            strict=strict,
            encoding=encoding,
            keep_partial=keep_partial,
            rescore_segments=rescore_segments,
            left_undone=items_undone if first else None,
        )
        failed = failed or bool(report.stopped or (report.rows and report.rejected == report.rows))
    if failed:
        raise click.exceptions.Exit(1)


def _items_not_imported(
    app: AppContext, items: Path, strict: bool, encoding: str | None, keep_partial: bool
) -> str:
    """That `items` was not imported, and the command that imports it alone, with the
    options it was given (`--map` and `--rejects` are the orders file's)."""
    command = ["campaigner"]
    if app.config_path:
        command += ["--config", app.config_path]
    command += ["orders", "import", "--items", str(items)]
    if encoding:
        command += ["--encoding", encoding]
    if keep_partial:
        command.append("--keep-partial")
    if strict:
        command.append("--strict")
    return (
        f"The line items in {items} were not imported; `{shlex.join(command)}` imports them "
        "alone, once their orders are in."
    )


def _print_summary(file: Path, report: ImportReport, encoding: str | None) -> None:
    if encoding is None and report.encoding != "utf-8-sig":
        click.echo(f"{file}: read as {report.encoding} (detected; --encoding to choose)")
    click.echo(shown(f"{file}: {report.summary()}"))
    for line in report.rejections():
        click.echo(f"  {shown(line)}")


def _import_command(
    kind: str, fields: tuple[str, ...], example: str, more: str = ""
) -> click.Command:
    @click.command(
        "import",
        help=f"""Import {kind} from a CSV file (upsert by external id).

    Columns: {", ".join(fields)}. Common spellings are recognised (First Name,
    Mobile, Phone Number, SMS Consent, Language, DOB, «موبایل», …); others can be mapped with
    --map HEADER=FIELD. A column that matches no field is named in the summary (an error
    with --strict). Bad rows go to FILE.rejects.csv with their line number and
    reason; good rows still load; the summary counts them by kind of reason, with the
    first lines of each (the 20 commonest kinds; the rest on one line). Importing the
    same file twice changes nothing.

    Rows are written in batches of 5,000, each one transaction, and the progress bar
    moves as they commit. An import stopped part-way (Ctrl-C, the database lost or
    refusing a batch) keeps the whole batches before and says which lines were not
    written; importing the file again completes it. Ctrl-C after the last batch, while
    value segments are recomputed, or a database error there, keeps every row;
    `campaigner run` updates the segments.

    The file is read as UTF-8 (Excel's "CSV UTF-8"), or as Windows-1256 when it is
    recognisably Persian (Excel's plain "CSV" on Persian Windows); any other encoding is
    given with --encoding. The separator (comma, semicolon or tab) is found from the header.
    A file with a line that does not decode imports nothing, unless --keep-partial.
    {more}
    \b
    Example:
      {example}
      {example.split(" --")[0]} --encoding cp1252
    """,
    )
    @click.argument(
        "file", required=kind != "orders", type=click.Path(path_type=Path, dir_okay=False)
    )
    @click.option(
        "--map", "maps", multiple=True, metavar="HEADER=FIELD", help="Map a CSV header to a field."
    )
    @click.option(
        "--rejects",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Where to write rejected rows.",
    )
    @click.option(
        "--strict", is_flag=True, help="Refuse a file with a column that matches no field."
    )
    @click.option(
        "--encoding",
        metavar="NAME",
        help="The file's encoding, e.g. utf-8, cp1256, cp1252 (default: detected).",
    )
    @click.option(
        "--keep-partial",
        is_flag=True,
        help="Import the lines before one that does not decode (default: import nothing).",
    )
    @click.option(
        "--items",
        "items",
        type=click.Path(path_type=Path, dir_okay=False),
        hidden=kind != "orders",
        help="A CSV of the orders' line items, one per row, keyed by order_id (after FILE).",
    )
    @pass_app
    def command(
        app: AppContext,
        file: Path | None,
        maps: tuple[str, ...],
        rejects: Path | None,
        strict: bool,
        encoding: str | None,
        keep_partial: bool,
        items: Path | None,
    ) -> None:
        if items is not None and kind != "orders":
            raise CampaignerError("--items goes with `campaigner orders import`")
        run_imports(
            app,
            kind,
            file,
            items,
            maps,
            rejects,
            strict=strict,
            encoding=encoding,
            keep_partial=keep_partial,
        )

    return command


@click.group("customers")
def customers_group() -> None:
    """Customer data."""


@click.group("orders")
def orders_group() -> None:
    """Order data."""


customers_group.add_command(
    _import_command(
        "customers", CUSTOMER_FIELDS, "campaigner customers import customers.csv --map Mobile=phone"
    )
)
orders_group.add_command(
    _import_command(
        "orders",
        ORDER_FIELDS,
        "campaigner orders import orders.csv --items order_items.csv --map Customer=customer_id",
        more=f"""
    Amounts are read by the order's currency: in rials and tomans (IRR, IRT), which
    have no decimals, 150.000 is 150,000 and a fraction is refused; in a currency with
    decimals, more than it has (150.000 USD) is refused as ambiguous. A comma is read
    only between thousands (1,500,000).

    Line items come in their own file with --items (columns: {", ".join(ITEM_FILE_FIELDS)}),
    loaded after the orders: the lines of an order replace the items it had, so they must
    be together in the file. Several categories in one cell are separated by | or ; (a
    category name may hold a comma). Either file may be given alone. An import stopped in
    the orders file leaves the items file unread, and says how to import it alone.
""",
    )
)

COMMANDS = [customers_group, orders_group]
