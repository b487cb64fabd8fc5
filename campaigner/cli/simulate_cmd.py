"""`campaigner simulate`: what the engine would send over a period, without sending anything."""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from campaigner.cli.context import AppContext, pass_app
from campaigner.display import json_text, shown
from campaigner.simulate import (
    OUTCOMES,
    SimulatedMessage,
    Simulation,
    parse_start,
    simulate,
)


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
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object per message (sent or not, with status and reason), no tables.",
)
@pass_app
def simulate_cmd(
    app: AppContext, start: str, days: int, rules_dir: Path | None, as_json: bool
) -> None:
    """Run the real planner and dispatcher over a virtual clock on a copy of the data.

    Prints every message of the period: those that would go out, at the time they would go
    out, and those that would not, with why (deferred past the period, skipped, expired,
    failed, held out). Then a table of messages sent per rule per day, and one of what
    became of each rule's messages. The database is only read and no gateway is called.

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
    for message in result.timeline():
        if as_json:
            click.echo(json_text(message.as_json(zone)))
        else:
            click.echo(shown(message_line(message, zone)))
    if not as_json:
        click.echo()
        click.echo(summary_table(result))
        click.echo()
        click.echo(outcome_table(result))


def message_line(message: SimulatedMessage, zone: ZoneInfo) -> str:
    """One message as a line; line breaks in its text are drawn when it is `shown`."""
    when = message.at.astimezone(zone).isoformat(sep=" ", timespec="minutes")
    who = f"{when}  {message.rule}  {message.customer_id}  {message.phone or '-'}"
    if message.status != "sent":
        why = f": {message.reason}" if message.reason else ""
        return f"{who}  {message.status.upper()}{why}"
    return f"{who}  [{message.segments} {message.encoding}]  {message.text}"


def summary_table(result: Simulation) -> str:
    """Messages sent per rule (columns) per local day (rows), with totals."""
    days = result.per_rule_per_day()
    rules = sorted({rule for counts in days.values() for rule in counts})
    header = ["DAY", *rules, "TOTAL"]
    rows = [header]
    for day, counts in days.items():
        rows.append([day.isoformat(), *(str(counts[r]) for r in rules), str(sum(counts.values()))])
    totals = [sum(counts[r] for counts in days.values()) for r in rules]
    rows.append(["TOTAL", *(str(t) for t in totals), str(sum(totals))])
    return _aligned(rows)


def outcome_table(result: Simulation) -> str:
    """Per rule: how many messages were sent, deferred past the period, skipped, expired,
    failed or held out, and why the unsent ones were not sent."""
    header = ["RULE", *(outcome.upper() for outcome in OUTCOMES), "WHY"]
    rows = [header]
    for rule, outcome in result.per_rule().items():
        why = ", ".join(
            f"{count} {status}" + (f" ({reason})" if reason else "")
            for (status, reason), count in outcome.reasons.items()
        )
        rows.append([rule, *(str(outcome.counts[name]) for name in OUTCOMES), why])
    return _aligned(rows, left=(0, len(header) - 1))


def _aligned(rows: list[list[str]], left: Collection[int] = (0,)) -> str:
    """A plain-text table: the columns in `left` aligned to the left, counts to the right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.ljust(width) if i in left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(shown(line) for line in lines)


COMMANDS = [simulate_cmd]
