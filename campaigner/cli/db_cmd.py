"""`campaigner db upgrade|status`."""

from __future__ import annotations

import click

from campaigner.cli.context import AppContext, pass_app
from campaigner.config import mask_url
from campaigner.db.schema import (
    current_revision,
    head_revision,
    missing_database,
    refuse_newer,
    upgrade,
)


@click.group("db")
def db_group() -> None:
    """Create or migrate the database schema."""


@db_group.command("upgrade")
@pass_app
def upgrade_cmd(app: AppContext) -> None:
    """Apply all pending migrations (safe to run at every deploy).

    \b
    Example:
      campaigner db upgrade
    """
    before = current_revision(app.engine)
    upgrade(app.engine)
    after = current_revision(app.engine)
    where = mask_url(app.settings.database.url)
    if before == after:
        click.echo(f"{where}: already at revision {after}")
    else:
        click.echo(f"{where}: upgraded from {before or 'empty'} to {after}")


@db_group.command("status")
@pass_app
def status_cmd(app: AppContext) -> None:
    """Show the schema revision of the database and the one this version expects.

    \b
    Example:
      campaigner db status
    """
    missing = missing_database(app.engine)
    if missing:
        click.echo(missing)
        return
    current = current_revision(app.engine)
    refuse_newer(current)
    head = head_revision()
    state = "up to date" if current == head else "outdated: run `campaigner db upgrade`"
    click.echo(f"database revision {current or 'empty'}, expected {head}: {state}")


COMMANDS = [db_group]
