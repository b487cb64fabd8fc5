"""`campaigner announce RULE [--confirm]`: what an announcement would do, and approving it."""

from __future__ import annotations

import getpass

import click

from campaigner.announcements import gate
from campaigner.announcements.estimate import estimate
from campaigner.cli.context import AppContext, pass_app
from campaigner.clock import SystemClock
from campaigner.display import shown
from campaigner.errors import CampaignerError
from campaigner.preview import load_rule
from campaigner.rules.models import AnnouncementRule


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
    settings = app.settings
    rule = load_rule(settings, rule_name)
    if not isinstance(rule, AnnouncementRule):
        raise CampaignerError(f"rule {rule_name!r} is a {rule.trigger} rule, not an announcement")
    sessions = app.sessions()
    now = SystemClock().now()
    with sessions() as session:
        moved = gate.moved_after_start(session, rule)
    if moved:
        raise CampaignerError(f"rule {rule_name!r}: at: {moved}")
    found = estimate(settings, sessions, rule, now)
    click.echo(shown(f"{rule.name}: {rule.when()}, template {rule.template}"))
    for line in found.lines():
        click.echo(shown(f"  {line}"))
    if not rule.enabled:
        click.echo("  disabled: nothing is queued while `enabled = false`")
    if found.record is not None and found.record.withdrawn_at is not None:
        raise CampaignerError(f"rule {rule_name!r} was withdrawn; copy it under a new name")
    if not confirm:
        if not gate.is_approved_record(found.record) and not rule.approved:
            click.echo(
                shown(
                    f"Would queue {found.audience} message(s) on the daemon's next planning "
                    f"pass after `campaigner announce {rule.name} --confirm`."
                )
            )
        return
    if found.total == 0:
        raise CampaignerError(f"rule {rule_name!r}: nobody to send to; nothing approved")
    with sessions.begin() as session:
        record = gate.confirm(session, rule, approver or getpass.getuser(), now)
        by, at = record.approved_by, record.approved_at
    click.echo(
        shown(
            f"Approved by {by} at {at:%Y-%m-%d %H:%M} UTC: {found.audience} message(s) are "
            "queued on the daemon's next planning pass."
        )
    )


COMMANDS = [announce_command]
