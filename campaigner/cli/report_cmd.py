"""`campaigner report`."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click
from rich.console import Console

from campaigner.cli.context import AppContext, pass_app
from campaigner.clock import SystemClock
from campaigner.errors import CampaignerError
from campaigner.reports import render_html, report_to_csv, report_to_json
from campaigner.reports.shop import shop_report
from campaigner.reports.terminal import print_report


def _date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CampaignerError(f"{option} {value!r}: expected a date such as 2026-03-01") from None


@click.command("report")
@click.option("--since", metavar="DATE", help="First day (YYYY-MM-DD, UTC) of the period.")
@click.option("--until", metavar="DATE", help="Last day (YYYY-MM-DD, UTC), included.")
@click.option("--rule", metavar="NAME", help="Only this rule's messages and NPS replies.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a self-contained HTML report with charts to this file.",
)
@pass_app
def report_cmd(
    app: AppContext,
    since: str | None,
    until: str | None,
    rule: str | None,
    output_format: str,
    html_path: Path | None,
) -> None:
    """Show what the messages did: delivery, conversions, revenue, uplift, churn, CLV, NPS.

    A message's period is the day it was due. A conversion is a paid order by the same
    customer within the rule's attribution window (`attribution_days`, default 7) after the
    message. Churn counts customers past the win_back rule's `inactive_days`.

    \b
    Example:
      campaigner report --since 2026-03-01 --until 2026-03-31
      campaigner report --rule win_back --format json
      campaigner report --html report.html
    """
    first, last = _date(since, "--since"), _date(until, "--until")
    if first and last and first > last:
        raise CampaignerError("--since is after --until")
    settings = app.settings
    with app.reading_pair() as (session, helper):
        built = shop_report(
            session, settings, SystemClock(), since=first, until=last, rule=rule, helper=helper
        )
    report = built.report
    if output_format == "json":
        click.echo(report_to_json(report))
    elif output_format == "csv":
        click.echo(report_to_csv(report), nl=False)
    else:
        console = Console()
        print_report(report, console if console.is_terminal else Console(width=120))
    if html_path is not None:
        page = render_html(report, shop_name=settings.shop.name, descriptions=built.descriptions)
        html_path.write_text(page, encoding="utf-8")
        click.echo(f"wrote {html_path}", err=output_format != "table")


COMMANDS = [report_cmd]
