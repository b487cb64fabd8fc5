"""`campaigner rules check` and `campaigner rules list`."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from campaigner.announcements.estimate import estimate
from campaigner.announcements.guard import moved_announcements
from campaigner.cli.context import AppContext, pass_app
from campaigner.clock import SystemClock
from campaigner.display import shown
from campaigner.errors import CampaignerError, one_line
from campaigner.occasions import upcoming
from campaigner.planner import count_due_each, day_bounds
from campaigner.products.checks import product_notes
from campaigner.rulebook import check_planning, check_rules, missing_dates
from campaigner.rules.loader import RuleProblem, RuleSet
from campaigner.rules.models import AnnouncementRule, OccasionRule


def _load(app: AppContext, path: Path | None) -> RuleSet:
    return check_rules(app.settings, path)


@click.group("rules")
def rules_group() -> None:
    """Marketing rules: one TOML file per rule in the rules directory.

    \b
    Example:
      campaigner rules check
    """


@rules_group.command("check")
@click.argument("path", required=False, type=click.Path(path_type=Path, file_okay=False))
@pass_app
def check_command(app: AppContext, path: Path | None) -> None:
    """Validate every rule and its template; list every problem, or one line per rule.

    Each template is rendered with sample data within the render budget, and each rule's
    planning query is run against the database (nothing is written), so a rule that would
    fail in the daemon fails here. Each announcement shows its audience, its texts' segments
    and encoding, its estimated cost (from `[pricing]`) and whether it is approved; one whose
    `at` moved after its sending started is a problem. PATH defaults to `paths.rules` from
    the configuration. Exits 1 when anything is wrong.

    \b
    Example:
      campaigner rules check rules/
    """
    loaded = _load(app, path)
    problems = [*loaded.problems, *_planning_problems(app, loaded)]
    if problems:
        for problem in problems:
            click.echo(shown(problem))
        click.echo(f"{len(problems)} problem(s) found", err=True)
        raise click.exceptions.Exit(1)
    today = SystemClock().now().astimezone(ZoneInfo(app.settings.customers.timezone)).date()
    for name, rule in loaded.rules.items():
        state = "" if rule.enabled else " [disabled]"
        when = rule.when()
        if isinstance(rule, OccasionRule):
            overrides = app.settings.occasions.overrides.get(rule.occasion_date.key)
            when += f", {upcoming(rule.occasion_date, today, overrides)}"
        click.echo(shown(f"ok  {name}: {rule.trigger}, {when}, template {rule.template}{state}"))
        if isinstance(rule, AnnouncementRule) and _has_database(app, quiet=True):
            found = estimate(app.settings, app.sessions(), rule, SystemClock().now())
            for line in found.lines():
                click.echo(shown(f"    {line}"))
    for name, note in _product_notes(app, loaded):
        click.echo(shown(f"note  {name}: {note}"))
    click.echo(f"{len(loaded.rules)} rule(s) OK", err=True)


def _product_notes(app: AppContext, loaded: RuleSet) -> list[tuple[str, str]]:
    """What the shop's data says about the products a rule names (see `products.checks`);
    nothing without a database."""
    if not _has_database(app, quiet=True):
        return []
    try:
        with app.sessions()() as session:
            now = SystemClock().now()
            return [
                (name, note)
                for name, rule in loaded.rules.items()
                for note in product_notes(session, rule, now)
            ]
    except (CampaignerError, DBAPIError):
        return []


def _planning_problems(app: AppContext, loaded: RuleSet) -> list[RuleProblem]:
    """The database's verdict on each rule's planning query; a note instead when there is
    no usable database (a check of rule files before deploying)."""
    if not loaded.rules or not _has_database(app):
        return []
    try:
        sessions = app.sessions()
        problems = [
            *check_planning(sessions, loaded, SystemClock(), app.settings),
            *moved_announcements(sessions, loaded),
        ]
        for note in missing_dates(sessions, loaded):
            click.echo(shown(note), err=True)
        return problems
    except (CampaignerError, DBAPIError) as exc:
        click.echo(shown(f"note: planning queries not checked: {one_line(exc)}"), err=True)
        app.database_unusable = True
        return []


def _has_database(app: AppContext, *, quiet: bool = False) -> bool:
    """Whether the configured database is there to ask (a SQLite file is not created)."""
    if app.database_unusable:
        return False
    url = make_url(app.settings.database.url)
    database = url.database or ""
    if (
        url.get_backend_name() == "sqlite"
        and database != ":memory:"
        and not Path(database).is_file()
    ):
        if not quiet:
            click.echo(
                shown(f"note: planning queries not checked: no database at {database}"), err=True
            )
        return False
    return True


@rules_group.command("list")
@pass_app
def list_command(app: AppContext) -> None:
    """Show each rule with how many messages it would still plan today.

    "Today" is the shop's day (`customers.timezone`); rules with problems are left out and
    named on stderr (see `campaigner rules check`). A rule whose query the database refuses
    is shown as `broken`, its error named on stderr.

    \b
    Example:
      campaigner rules list
    """
    settings = app.settings
    loaded = _load(app, None)
    for problem in loaded.problems:
        click.echo(f"skipped: {shown(problem)}", err=True)
    clock = SystemClock()
    day = day_bounds(clock, settings.customers.timezone)
    with app.sessions()() as session:
        counts = count_due_each(session, loaded.rules.values(), clock, settings, day)
    rows = [("RULE", "TRIGGER", "ENABLED", "TEMPLATE", "TODAY")]
    for name, rule in loaded.rules.items():
        count = counts.get(name)
        today = "0" if count is None else "broken" if count.error else str(count.count)
        enabled = "yes" if rule.enabled else "no"
        rows.append((name, rule.trigger, enabled, rule.template, today))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo(shown("  ".join(cells).rstrip()))
    for name, count in counts.items():
        if count.error:
            click.echo(shown(f"broken: rule {name!r}: its query fails: {count.error}"), err=True)


COMMANDS = [rules_group]
