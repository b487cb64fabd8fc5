"""`campaigner status`: the send queue as the database sees it."""

from __future__ import annotations

import click

from campaigner.cli.context import AppContext, pass_app
from campaigner.clock import SystemClock
from campaigner.dispatch.overview import queue_overview


@click.command("status")
@pass_app
def status_cmd(app: AppContext) -> None:
    """Show the queue: messages by status and rule, the next due time, and unknown rows.

    Unknown rows are messages whose send was interrupted (a crash mid-send) and that the
    gateway could not confirm: they are never re-sent automatically.

    \b
    Example:
      campaigner status
    """
    now = SystemClock().now()
    with app.sessions()() as session:
        overview = queue_overview(session, now)
    if not overview.by_status:
        click.echo("The ledger is empty: nothing planned yet.")
        return
    click.echo("Messages by status:")
    for status, number in sorted(overview.by_status.items()):
        click.echo(f"  {status:<12} {number:>8}")
    click.echo("By rule:")
    for (rule, status), number in sorted(overview.by_rule.items()):
        click.echo(f"  {rule:<24} {status:<12} {number:>8}")
    if overview.next_due is None:
        click.echo("Nothing queued.")
    else:
        click.echo(
            f"Next due: {overview.next_due:%Y-%m-%d %H:%M:%S} UTC ({overview.due_now} due now)"
        )
    if overview.unknown:
        click.echo("Unknown (interrupted mid-send, not re-sent; check with the gateway):")
        for message in overview.unknown:
            click.echo(
                f"  #{message.id} {message.rule} to {message.phone} via {message.gateway or '?'}"
                f" since {message.updated_at:%Y-%m-%d %H:%M} UTC"
            )


COMMANDS = [status_cmd]
