"""`campaigner simulate`: what the engine would send over a period, without sending anything."""

from __future__ import annotations

import logging
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from campaigner.cli.context import AppContext, pass_app
from campaigner.display import json_text, shown
from campaigner.simulate import Simulation, parse_start, simulate


@click.command("simulate")
@click.option("--start", required=True, help="A date (local midnight) or datetime, shop's zone.")
@click.option("--days", required=True, type=click.IntRange(min=1), help="How many days to run.")
@click.option(
    "--rules",
    "rules_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Rules directory to try (default: paths.rules).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message, no summary.")
@pass_app
def simulate_cmd(
    app: AppContext, start: str, days: int, rules_dir: Path | None, as_json: bool
) -> None:
    """Run the real planner and dispatcher over a virtual clock on a copy of the data.

    Prints every message that would go out, at the time it would go out, then a table of
    messages per rule per day. The database is only read and no gateway is called.

    \b
    Example:
      campaigner simulate --start 2026-03-20 --days 7
      campaigner simulate --start 2026-03-20T09:00 --days 1 --rules drafts/ --json
    """
    settings = app.settings
    zone = ZoneInfo(settings.customers.timezone)
    app.sessions()  # refuses an outdated schema before anything is copied
    if not app.verbose:
        # A line per tick would bury the messages; problems (warnings) still show.
        logging.getLogger("campaigner").setLevel(logging.WARNING)
    result = simulate(settings, app.engine, parse_start(start, zone), days, rules_dir=rules_dir)
    for message in result.messages:
        if as_json:
            click.echo(json_text(message.as_json(zone)))
        else:
            when = message.at.astimezone(zone).isoformat(sep=" ", timespec="minutes")
            click.echo(
                shown(
                    f"{when}  {message.rule}  {message.customer_id}  {message.phone}  "
                    f"[{message.segments} {message.encoding}]  {message.text}"
                )
            )
    if not as_json:
        click.echo()
        click.echo(summary_table(result))


def summary_table(result: Simulation) -> str:
    """Messages per rule (columns) per local day (rows), with totals."""
    days = result.per_rule_per_day()
    rules = sorted({rule for counts in days.values() for rule in counts})
    header = ["DAY", *rules, "TOTAL"]
    rows = [header]
    for day, counts in days.items():
        rows.append([day.isoformat(), *(str(counts[r]) for r in rules), str(sum(counts.values()))])
    totals = [sum(counts[r] for counts in days.values()) for r in rules]
    rows.append(["TOTAL", *(str(t) for t in totals), str(sum(totals))])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells))
    return "\n".join(shown(line) for line in lines)


COMMANDS = [simulate_cmd]
