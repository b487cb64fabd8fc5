"""`campaigner coupons export`."""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from campaigner.calendars import parse_date
from campaigner.cli.context import AppContext, pass_app
from campaigner.errors import CampaignerError
from campaigner.messages.coupons import export_coupons


@click.group("coupons")
def coupons_group() -> None:
    """Coupon codes sent to customers, for the shop to honour."""


@coupons_group.command("export")
@click.option(
    "--since",
    metavar="DATE",
    default=None,
    help="Only coupons issued on or after this day (YYYY-MM-DD, or Jalali YYYY/MM/DD).",
)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@pass_app
def export_cmd(app: AppContext, since: str | None, file: Path) -> None:
    """Write issued coupons (code, customer, value, expiry, redemption) to a CSV file.

    The file opens safely in Excel: a value that would start a formula gets a leading '.

    \b
    Example:
      campaigner coupons export --since 2026-03-01 coupons.csv
    """
    start = None
    if since:
        try:
            day = parse_date(since)
        except ValueError as exc:
            raise CampaignerError(f"--since: {exc}") from None
        start = datetime.combine(day, time(0), ZoneInfo(app.settings.customers.timezone))
    with app.sessions()() as session:
        count = export_coupons(session, start, file, app.settings.customers.currency)
    click.echo(f"{file}: {count} coupons")


COMMANDS = [coupons_group]
