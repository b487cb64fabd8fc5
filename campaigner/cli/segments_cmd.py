"""`campaigner segments`: each value segment's size and worth."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from campaigner.cli.context import AppContext, pass_app
from campaigner.display import json_text, rich_text
from campaigner.segments.summary import SegmentLine, segment_summary
from campaigner.spreadsheets import SpreadsheetWriter

COLUMNS = (
    "segment",
    "customers",
    "customer_share_percent",
    "currency",
    "buyers",
    "orders",
    "revenue",
    "revenue_share_percent",
    "average_order_value",
    "average_clv",
)


@click.command("segments")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@pass_app
def segments_cmd(app: AppContext, output_format: str) -> None:
    """Each value segment (RFM: champions, loyal, … at_risk, lost) with its number of
    customers and, per currency, its share of revenue, average order value and average
    lifetime value (CLV). Segments are recomputed after every import, sync and API batch,
    and fully once a day by `campaigner run`; README "Segments" has the map.

    \b
    Example:
      campaigner segments
      campaigner segments --format csv > segments.csv
    """
    with app.sessions()() as session:
        lines = segment_summary(session, app.settings.customers.currency)
    if output_format == "json":
        click.echo(json_text([_as_dict(line) for line in lines], indent=2))
    elif output_format == "csv":
        buffer = io.StringIO()
        writer = SpreadsheetWriter(buffer)
        writer.writerow(COLUMNS)
        for row in _rows(lines):
            writer.writerow(row)
        click.echo(buffer.getvalue(), nl=False)
    else:
        table = Table(title="Segments")
        for index, name in enumerate(COLUMNS):
            table.add_column(name.replace("_", " "), justify="left" if index in (0, 3) else "right")
        for row in _rows(lines):
            table.add_row(*(rich_text("" if cell is None else cell) for cell in row))
        console = Console()
        (console if console.is_terminal else Console(width=160)).print(table)


def _rows(lines: list[SegmentLine]) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for line in lines:
        head = [line.segment, line.customers, line.customer_share]
        if not line.currencies:
            rows.append([*head, None, 0, 0, None, None, None, None])
        for money in line.currencies:
            rows.append(
                [
                    *head,
                    money.currency,
                    money.buyers,
                    money.orders,
                    money.revenue,
                    money.revenue_share,
                    money.average_order_value,
                    money.average_clv,
                ]
            )
            head = [line.segment, None, None]
    return rows


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _as_dict(line: SegmentLine) -> dict[str, Any]:
    return {
        "segment": line.segment,
        "customers": line.customers,
        "customer_share_percent": _text(line.customer_share),
        "currencies": [
            {
                "currency": money.currency,
                "buyers": money.buyers,
                "orders": money.orders,
                "revenue": _text(money.revenue),
                "revenue_share_percent": _text(money.revenue_share),
                "average_order_value": _text(money.average_order_value),
                "average_clv": _text(money.average_clv),
            }
            for money in line.currencies
        ],
    }


COMMANDS = [segments_cmd]
