"""`campaigner status`: the send queue as the database sees it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from campaigner.cli.context import AppContext, pass_app
from campaigner.cli.unknown_cmd import describe
from campaigner.clock import SystemClock
from campaigner.daemon.heartbeats import HEARTBEAT_INTERVAL, daemon_heartbeats
from campaigner.dispatch.overview import queue_overview
from campaigner.display import shown

# A daemon not heard from for this many heartbeats has probably died without saying goodbye.
STALE_AFTER_HEARTBEATS = 4


@click.command("status")
@pass_app
def status_cmd(app: AppContext) -> None:
    """Show the running daemons and the queue: messages by status and rule, the next due
    time, and unknown rows.

    Each daemon reports itself every few seconds: its host and pid, when it last did so,
    its gateways' circuit state, the rule files it could not load (it keeps running the
    last good version of those rules) and the rules whose planning fails (the others plan
    as usual; a failing rule is tried again after a while, or as soon as its file changes).
    One silent for a minute is "not responding"; one silent for longer than [daemon]
    gone_after (5 minutes) is gone (killed, or its machine is down): it is not listed, only
    counted.

    Unknown rows are messages whose send was interrupted (a crash mid-send) and that the
    gateway could not confirm: they are never re-sent automatically. Settle them with
    `campaigner unknown list` and `campaigner unknown resolve`.

    \b
    Example:
      campaigner status
    """
    now = SystemClock().now()
    with app.sessions()() as session:
        overview = queue_overview(session, now)
        heartbeats = daemon_heartbeats(session)
    show_daemons(heartbeats, now, gone_after=app.settings.daemon.gone_after)
    if not overview.by_status:
        click.echo("The ledger is empty: nothing planned yet.")
        return
    click.echo("Messages by status:")
    for status, number in sorted(overview.by_status.items()):
        click.echo(shown(f"  {status:<12} {number:>8}"))
    click.echo("By rule:")
    for (rule, status), number in sorted(overview.by_rule.items()):
        click.echo(shown(f"  {rule:<24} {status:<12} {number:>8}"))
    if overview.next_due is None:
        click.echo("Nothing queued.")
    else:
        click.echo(
            f"Next due: {overview.next_due:%Y-%m-%d %H:%M:%S} UTC ({overview.due_now} due now)"
        )
    if overview.unknown:
        click.echo(
            "Unknown (interrupted mid-send, not re-sent; check with the gateway, then "
            "`campaigner unknown resolve`):"
        )
        for message in overview.unknown:
            click.echo(f"  {describe(message)}")


def show_daemons(heartbeats: list[dict[str, Any]], now: datetime, *, gone_after: float) -> None:
    """Live daemons in full; gone ones (silent for more than `gone_after`) only counted."""
    ticks = [(beat, datetime.fromisoformat(beat["last_tick"])) for beat in heartbeats]
    live = [(beat, tick) for beat, tick in ticks if (now - tick).total_seconds() <= gone_after]
    click.echo("Daemons:" if live else "No daemon running (start one with `campaigner run`).")
    for beat, last_tick in live:
        age = (now - last_tick).total_seconds()
        stale = age > STALE_AFTER_HEARTBEATS * HEARTBEAT_INTERVAL
        circuit = ", ".join(f"{name} {state}" for name, state in sorted(beat["circuit"].items()))
        click.echo(
            shown(
                f"  {beat['host']} pid {beat['pid']}: last tick "
                f"{last_tick:%Y-%m-%d %H:%M:%S} UTC ({age:.0f}s ago"
                f"{'; not responding' if stale else ''}), circuit: {circuit or 'not used yet'}"
            )
        )
        for error in beat["rule_errors"]:
            click.echo(f"    rule error (last good version still running): {shown(error)}")
        for rule, failure in beat.get("plan_failures", {}).items():
            since = datetime.fromisoformat(failure["since"])
            retry = datetime.fromisoformat(failure["retry_at"])
            times = failure["failures"]
            click.echo(
                shown(
                    f"    rule {rule} failed to plan {times} time{'s' if times != 1 else ''} "
                    f"since {since:%Y-%m-%d %H:%M} UTC: {failure['error']}; next try "
                    f"{retry:%H:%M} UTC or when its file changes"
                )
            )
    gone = len(ticks) - len(live)
    if gone:
        click.echo(
            f"({gone} daemon{'s' if gone > 1 else ''} not heard from for more than "
            f"{gone_after:.0f}s not shown: gone without a clean stop, e.g. killed)"
        )


COMMANDS = [status_cmd]
