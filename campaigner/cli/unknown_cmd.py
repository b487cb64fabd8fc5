"""`campaigner unknown list|resolve`: messages whose send was interrupted, settled by hand."""

from __future__ import annotations

import getpass
import os
from datetime import timedelta

import click

from campaigner.cli.context import AppContext, pass_app
from campaigner.clock import SystemClock
from campaigner.db.models import Message
from campaigner.dispatch.routes import route_providers
from campaigner.dispatch.unknown import Resolution, Selection, resolve_unknown, unknown_messages
from campaigner.display import shown
from campaigner.errors import CampaignerError, ConfigError
from campaigner.gateways.registry import gateway_class
from campaigner.masking import mask
from campaigner.rules.durations import parse_duration

ASK = {
    Resolution.SENT: "Record {n} unknown messages as sent?",
    Resolution.NOT_SENT: "Record {n} unknown messages as not sent (failed, never re-sent)?",
    Resolution.REQUEUE: "Queue {n} unknown messages again (sent when the policy allows)?",
}
DONE = {
    Resolution.SENT: "recorded as sent",
    Resolution.NOT_SENT: "recorded as not sent",
    Resolution.REQUEUE: "queued again",
}


class Duration(click.ParamType):
    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except (ValueError, OverflowError) as exc:
            self.fail(str(exc), param, ctx)


def describe(message: Message) -> str:
    """One unknown message on one line, as `unknown list` and `status` show it."""
    return shown(
        f"#{message.id} {message.rule} to {message.phone} via {message.gateway or '?'} "
        f"since {message.updated_at:%Y-%m-%d %H:%M} UTC"
    )


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (some containers)
        return f"uid {os.getuid()}"


def _lookup_notes(app: AppContext) -> dict[str, str]:
    """For each route label: whether the daemon can settle its rows by itself."""
    notes = {}
    for label, provider in route_providers(app.settings).items():
        try:
            looks_up = gateway_class(provider).supports_status
        except (ConfigError, ImportError):
            looks_up = False
        notes[label] = (
            "the daemon asks the gateway and settles these itself"
            if looks_up
            else "no status lookup: check the gateway's own logs, then resolve"
        )
    return notes


@click.group("unknown")
def unknown_group() -> None:
    """Messages whose send was interrupted: the request was in flight when the answer was
    lost (a crash, a timeout). They are never re-sent blindly. The daemon settles them
    through the gateway's status lookup where it has one; for Kannel, check its logs and
    settle them here.
    """


@unknown_group.command("list")
@click.option("--rule", help="Only this rule's messages.")
@click.option(
    "--older-than", type=Duration(), help="Only messages unknown for at least this long (2h, 1d)."
)
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True)
@pass_app
def list_cmd(app: AppContext, rule: str | None, older_than: timedelta | None, limit: int) -> None:
    """List unknown messages, longest unknown first: id, rule, phone, gateway, since when,
    and why.

    \b
    Example:
      campaigner unknown list
      campaigner unknown list --rule thank_you --older-than 1h
    """
    now = SystemClock().now()
    with app.sessions()() as session:
        messages = unknown_messages(
            session, Selection(rule=rule, older_than=older_than), now, limit=limit
        )
        if not messages:
            click.echo("No unknown messages.")
            return
        notes = _lookup_notes(app)
        for m in messages:
            click.echo(f"{describe(m)} ({m.reason or 'no reason'})")
            if m.last_error:
                click.echo(f"    error: {shown(mask(m.last_error))}")
    for label in sorted({m.gateway or "?" for m in messages}):
        click.echo(f"via {label}: {notes.get(label, 'gateway no longer configured')}")
    more = " (more not shown: --limit)" if len(messages) == limit else ""
    click.echo(f"{len(messages)} unknown{more}.")
    click.echo("Settle with: campaigner unknown resolve ID... --sent | --not-sent | --requeue")


@unknown_group.command("resolve")
@click.argument("ids", nargs=-1, type=int)
@click.option("--sent", "resolution", flag_value=Resolution.SENT, help="It went out.")
@click.option(
    "--not-sent",
    "resolution",
    flag_value=Resolution.NOT_SENT,
    help="It did not go out and must not: failed, reason not_sent.",
)
@click.option(
    "--requeue",
    "resolution",
    flag_value=Resolution.REQUEUE,
    help="It did not go out: queue it again (window, caps and opt-out checked again).",
)
@click.option("--rule", help="All unknown messages of this rule (instead of ids).")
@click.option(
    "--older-than",
    type=Duration(),
    help="All messages unknown for at least this long (instead of ids; with --rule: both).",
)
@click.option("--by", help="Who settles them, for the record (default: your user name).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def resolve_cmd(
    app: AppContext,
    ids: tuple[int, ...],
    resolution: Resolution | None,
    rule: str | None,
    older_than: timedelta | None,
    by: str | None,
    yes: bool,
) -> None:
    """Settle unknown messages by hand, after checking the gateway's logs: they went out
    (--sent), did not and must not (--not-sent), or did not and should (--requeue).

    Give message ids, or select by --rule and/or --older-than (asks for confirmation).
    Who settled each message and when is recorded and shown by `campaigner history`.

    \b
    Example:
      campaigner unknown resolve 1042 1043 --sent
      campaigner unknown resolve --rule thank_you --older-than 2h --requeue --by ops-alice
    """
    if resolution is None:
        raise CampaignerError("say what happened: --sent, --not-sent or --requeue")
    resolution = Resolution(resolution)  # click hands the flag value over as a plain str
    if bool(ids) == (rule is not None or older_than is not None):
        raise CampaignerError("give message ids, or --rule and/or --older-than (not both)")
    now = SystemClock().now()
    sessions = app.sessions()
    if not ids:
        with sessions() as session:
            found = unknown_messages(session, Selection(rule=rule, older_than=older_than), now)
        if not found:
            click.echo("No unknown messages match.")
            return
        if not yes:
            click.confirm(ASK[resolution].format(n=len(found)), abort=True)
        ids = tuple(message.id for message in found)  # exactly those confirmed
    settled = resolve_unknown(
        sessions, Selection(ids=ids), resolution, by=by or _operator(), now=now
    )
    for message_id, status in settled.left_alone.items():
        click.echo(f"#{message_id}: left alone, it is {status}, not unknown", err=True)
    click.echo(f"{len(settled.resolved)} {DONE[resolution]}.")
    if settled.left_alone:
        raise click.exceptions.Exit(1)


COMMANDS = [unknown_group]
