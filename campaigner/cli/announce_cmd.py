"""`campaigner announce RULE [--confirm]`: what an announcement would do, and approving it."""

from __future__ import annotations

import getpass

import click

from campaigner.announcements import approval
from campaigner.cli.context import AppContext, pass_app
from campaigner.clock import SystemClock
from campaigner.display import shown
from campaigner.errors import CampaignerError


@click.command("announce")
@click.argument("rule_name", metavar="RULE")
@click.option("--confirm", is_flag=True, help="Approve it: the daemon queues it on its next pass.")
@click.option(
    "--by",
    "approver",
    default=None,
    help="Who approves (recorded with the time; default: the login name).",
)
@pass_app
def announce_command(app: AppContext, rule_name: str, confirm: bool, approver: str | None) -> None:
    """Show an announcement's audience, texts and cost; approve it with --confirm.

    Nothing of an announcement is queued before it is approved, here or by
    `approved = true` in its file. Once approved, the daemon queues the whole audience on
    its next planning pass, each message due at its own time; disabling or deleting the
    file before then cancels what has not gone out.

    \b
    Example:
      campaigner announce yalda_sale             # look first
      campaigner announce yalda_sale --confirm   # then approve
    """
    sessions = app.sessions()
    now = SystemClock().now()
    found = approval.review(app.settings, sessions, rule_name, now)
    rule = found.rule
    click.echo(shown(f"{rule.name}: {rule.when()}, template {rule.template}"))
    for line in found.estimate.lines():
        click.echo(shown(f"  {line}"))
    if not rule.enabled:
        click.echo("  disabled: nothing is queued while `enabled = false`")
    if found.withdrawn:
        raise CampaignerError(f"rule {rule_name!r} was withdrawn; copy it under a new name")
    if not confirm:
        if not found.approved:
            click.echo(
                shown(
                    f"Would queue {found.estimate.audience} message(s) on the daemon's next "
                    f"planning pass after `campaigner announce {rule.name} --confirm`."
                )
            )
        return
    done = approval.approve(app.settings, sessions, rule_name, approver or getpass.getuser(), now)
    record = done.estimate.record
    assert record is not None and record.approved_at is not None
    click.echo(
        shown(
            f"Approved by {record.approved_by} at {record.approved_at:%Y-%m-%d %H:%M} UTC: "
            f"{found.estimate.audience} message(s) are queued on the daemon's next planning pass."
        )
    )


COMMANDS = [announce_command]
