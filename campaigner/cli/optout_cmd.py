"""`campaigner optout add|remove|list|import`: numbers that must receive nothing."""

from __future__ import annotations

from pathlib import Path

import click

from campaigner.cli.context import AppContext, pass_app
from campaigner.clock import SystemClock
from campaigner.customers.phones import InvalidPhone, normalize_phone
from campaigner.display import shown
from campaigner.errors import CampaignerError
from campaigner.optouts import add_opt_outs, import_opt_outs, list_opt_outs, remove_opt_out


def _phone(app: AppContext, raw: str) -> str:
    try:
        return normalize_phone(raw, app.settings.customers.region)
    except InvalidPhone as exc:
        raise CampaignerError(str(exc)) from None


@click.group("optout")
def optout_group() -> None:
    """The opt-out list: phone numbers that get no message from any rule."""


@optout_group.command("add")
@click.argument("phones", nargs=-1, required=True)
@click.option("--reason", default="", help="Why, for the record.")
@pass_app
def add_cmd(app: AppContext, phones: tuple[str, ...], reason: str) -> None:
    """Add phone numbers; queued messages to them are skipped from now on.

    \b
    Example:
      campaigner optout add 09121234567 --reason "asked by phone"
    """
    numbers = [_phone(app, raw) for raw in phones]
    with app.sessions().begin() as session:
        added = add_opt_outs(session, numbers, SystemClock().now(), reason=reason)
    click.echo(f"{added} added, {len(set(numbers)) - added} already on the list")


@optout_group.command("remove")
@click.argument("phone")
@pass_app
def remove_cmd(app: AppContext, phone: str) -> None:
    """Take a phone number off the list (only when the customer asked to opt back in).

    \b
    Example:
      campaigner optout remove 09121234567
    """
    number = _phone(app, phone)
    with app.sessions().begin() as session:
        removed = remove_opt_out(session, number)
    click.echo(f"{number} removed" if removed else f"{number} was not on the list")


@optout_group.command("list")
@pass_app
def list_cmd(app: AppContext) -> None:
    """List opted-out numbers with when, how and why.

    \b
    Example:
      campaigner optout list
    """
    with app.sessions()() as session:
        entries = list_opt_outs(session)
    for entry in entries:
        reason = f" {entry.reason}" if entry.reason else ""
        click.echo(shown(f"{entry.phone} {entry.created_at:%Y-%m-%d %H:%M} {entry.source}{reason}"))
    click.echo(f"{len(entries)} opted out")


@optout_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--encoding",
    metavar="NAME",
    help="The file's encoding, e.g. utf-8, cp1256 (default: detected, as for customers).",
)
@pass_app
def import_cmd(app: AppContext, path: Path, encoding: str | None) -> None:
    """Import numbers from a CSV or text file: the first column of each line.

    The first line is a header when it holds no number. An empty file is an error (exit
    1), as for `customers import`; a header alone adds nothing and says so.

    \b
    Example:
      campaigner optout import unsubscribed.csv
    """
    region = app.settings.customers.region
    with app.sessions().begin() as session:
        result = import_opt_outs(session, path, region, SystemClock().now(), encoding=encoding)
    if result.header_only:
        click.echo(shown(f"{path}: only a header line, no numbers: nothing added"))
        return
    skipped = f", {len(result.skipped)} line(s) without a number" if result.skipped else ""
    click.echo(f"{result.added} added, {result.already} already on the list{skipped}")
    for raw in result.invalid:
        click.echo(f"skipped invalid number: {shown(raw)}", err=True)
    for line, why in result.skipped:
        click.echo(f"skipped line {line}: {shown(why)}", err=True)


COMMANDS = [optout_group]
