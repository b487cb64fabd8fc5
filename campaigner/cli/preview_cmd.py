"""`campaigner preview`: one rule's message for one customer, or why there is none."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import click

from campaigner.cli.context import AppContext, pass_app
from campaigner.clock import SystemClock
from campaigner.display import shown
from campaigner.preview import load_rule, preview
from campaigner.simulate import parse_start


@click.command("preview")
@click.argument("rule")
@click.option("--customer", "customer_id", default=None, help="The customer's own (shop) id.")
@click.option("--at", "at", default=None, help="Date or datetime, shop's zone (default: now).")
@pass_app
def preview_cmd(app: AppContext, rule: str, customer_id: str | None, at: str | None) -> None:
    """Show the message RULE would send a customer at a given time, or why it would not.

    Without --customer, the first customer who is due is picked. Nothing is written to the
    database: a coupon or referral code shown is a sample.

    \b
    Example:
      campaigner preview birthday --customer C00042 --at 2026-03-21T10:00
      campaigner preview thank_you
    """
    settings = app.settings
    zone = ZoneInfo(settings.customers.timezone)
    moment = parse_start(at, zone) if at else SystemClock().now()
    result = preview(settings, app.sessions(), load_rule(settings, rule), moment, customer_id)
    who = f"customer {result.customer_id}" if result.customer_id else "no customer"
    click.echo(shown(f"{rule} for {who} at {_local(moment, zone)}"))
    for reason in result.reasons:
        click.echo(f"  not due: {shown(reason)}")
    if result.text is None:
        raise click.exceptions.Exit(1)
    if result.due and result.sends_at is not None:
        click.echo(f"  due: would go at {_local(result.sends_at, zone)}")
    click.echo(f"  {result.segments} segment(s), {result.encoding}")
    click.echo("")
    for line in result.text.split("\n"):
        click.echo(shown(line))
    if result.sample_codes:
        click.echo("")
        click.echo("(coupon and referral codes above are samples: real ones are issued on send)")


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %z")


COMMANDS = [preview_cmd]
