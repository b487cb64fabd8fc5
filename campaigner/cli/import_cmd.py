"""`campaigner customers import` and `campaigner orders import`."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from campaigner.cli.context import AppContext, pass_app
from campaigner.customers.importer import CUSTOMER_FIELDS, ORDER_FIELDS, ImportReport, import_csv
from campaigner.display import shown
from campaigner.errors import CampaignerError


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
) -> ImportReport:
    sessions = app.sessions()
    with Progress(
        TextColumn("{task.description}", style="progress.description", markup=False),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        transient=True,
        disable=not sys.stderr.isatty(),
    ) as progress:
        task = progress.add_task(
            f"importing {kind}", total=file.stat().st_size if file.exists() else None
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
        )
    if encoding is None and report.encoding != "utf-8-sig":
        click.echo(f"{file}: read as {report.encoding} (detected; --encoding to choose)")
    click.echo(shown(f"{file}: {report.summary()}"))
    for reason, count in sorted(report.reasons.items(), key=lambda item: -item[1]):
        click.echo(f"  {count:>7} × {shown(reason)}")
    return report


def _import_command(kind: str, fields: tuple[str, ...], example: str) -> click.Command:
    @click.command(
        "import",
        help=f"""Import {kind} from a CSV file (upsert by external id).

    Columns: {", ".join(fields)}. Common spellings are recognised (First Name,
    Mobile, Phone Number, SMS Consent, Language, DOB, «موبایل», …); others can be mapped with
    --map HEADER=FIELD. A column that matches no field is named in the summary (an error
    with --strict). Bad rows go to FILE.rejects.csv with their line number and
    reason; good rows still load. Importing the same file twice changes nothing.

    The file is read as UTF-8 (Excel's "CSV UTF-8"), or as Windows-1256 when it is
    recognisably Persian (Excel's plain "CSV" on Persian Windows); any other encoding is
    given with --encoding. The separator (comma, semicolon or tab) is found from the header.
    A file with a line that does not decode imports nothing, unless --keep-partial.

    \b
    Example:
      {example}
      {example.split(" --")[0]} --encoding cp1252
    """,
    )
    @click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
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
    @pass_app
    def command(
        app: AppContext,
        file: Path,
        maps: tuple[str, ...],
        rejects: Path | None,
        strict: bool,
        encoding: str | None,
        keep_partial: bool,
    ) -> None:
        report = run_import(
            app,
            kind,
            file,
            maps,
            rejects,
            strict=strict,
            encoding=encoding,
            keep_partial=keep_partial,
        )
        if report.stopped or (report.rows and report.rejected == report.rows):
            raise click.exceptions.Exit(1)

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
        "orders", ORDER_FIELDS, "campaigner orders import orders.csv --map Customer=customer_id"
    )
)

COMMANDS = [customers_group, orders_group]
