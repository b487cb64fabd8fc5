"""`campaigner sync`: read customers and orders from the shop's own database."""

from __future__ import annotations

import sys

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from sqlalchemy.orm import Session, sessionmaker

from campaigner.cli.context import AppContext, pass_app
from campaigner.config import SourceSettings
from campaigner.display import shown
from campaigner.errors import CampaignerError
from campaigner.sources import SyncFailed, SyncReport, source_named, sync_source

SHOWN_ERRORS = 20


@click.command("sync")
@click.option("--source", "name", metavar="NAME", help="Only this [[sources]] entry.")
@click.option("--full", is_flag=True, help="Read every row again, not only what changed.")
@pass_app
def sync_cmd(app: AppContext, name: str | None, full: bool) -> None:
    """Load new and changed customers and orders from each configured source.

    Sources are the `[[sources]]` entries in config.toml. Each sync continues where the
    previous one stopped (by the source's cursor column); --full reads everything again.
    Rows that cannot be loaded are listed with their id and reason; the rest still load.

    \b
    Example:
      campaigner sync --source woocommerce
    """
    settings = app.settings
    sources = [source_named(settings, name)] if name else settings.sources
    if not sources:
        raise CampaignerError("no [[sources]] configured in config.toml (see README)")
    sessions = app.sessions()
    failures = []
    for source in sources:
        try:
            report = _sync_with_progress(app, sessions, source, full)
        except SyncFailed as exc:
            _print(exc.report)
            failures.append(str(exc))
            continue
        except CampaignerError as exc:
            failures.append(str(exc))
            continue
        _print(report)
    for failure in failures:
        click.echo(f"Error: {shown(failure)}", err=True)
    if failures:
        raise click.exceptions.Exit(1)


def _sync_with_progress(
    app: AppContext, sessions: sessionmaker[Session], source: SourceSettings, full: bool
) -> SyncReport:
    with Progress(
        TextColumn("{task.description}", style="progress.description", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
        disable=not sys.stderr.isatty(),
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(kind: str, done: int, total: int | None) -> None:
            if kind not in tasks:
                tasks[kind] = bar.add_task(f"{source.name} {kind}", total=total)
            bar.update(tasks[kind], completed=done)

        return sync_source(sessions, source, app.settings, full=full, progress=progress)


def _print(report: SyncReport) -> None:
    click.echo(report.summary())
    for error in report.errors[:SHOWN_ERRORS]:
        click.echo(f"  rejected {shown(error)}")
    hidden = sum(k.rejected for k in report.kinds.values()) - min(len(report.errors), SHOWN_ERRORS)
    if hidden > 0:
        click.echo(f"  … and {hidden} more rejected rows (see the log)")
    for warning in report.warnings[:SHOWN_ERRORS]:
        click.echo(f"  shortened {shown(warning)}")
    hidden = sum(k.shortened for k in report.kinds.values()) - min(
        len(report.warnings), SHOWN_ERRORS
    )
    if hidden > 0:
        click.echo(f"  … and {hidden} more shortened values (see the log)")


COMMANDS = [sync_cmd]
