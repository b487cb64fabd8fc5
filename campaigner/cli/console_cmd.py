"""`campaigner console`: the web console alone, and its users."""

from __future__ import annotations

import sys
import threading

import click

from campaigner.cli.context import AppContext, pass_app
from campaigner.clock import SystemClock
from campaigner.console.roles import Role
from campaigner.console.users import add_user
from campaigner.console.web import PREFIX, Console
from campaigner.server.protocol import ConnectionLimits
from campaigner.server.serve import BackgroundServer


@click.group("console", invoke_without_command=True)
@click.option(
    "--host",
    default=None,
    help="Address to listen on (default: [console] host, else [server] host).",
)
@click.option(
    "--port", default=None, type=int, help="Port (default: [console] port, else [server] port)."
)
@click.pass_context
def console_cmd(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the web console alone: the same rule files and database as the daemon, for a
    marketer's laptop or a second machine. The daemon serves it too, under /console.

    \b
    Example:
      campaigner console add-user sara --role marketer
      campaigner console --port 8026
    """
    if ctx.invoked_subcommand is not None:
        return
    app: AppContext = ctx.obj
    settings = app.settings
    console = Console(settings, app.sessions(), SystemClock())
    chosen_host = host or settings.console.host or settings.server.host
    chosen_port = port if port is not None else (settings.console.port or settings.server.port)
    server = BackgroundServer(
        console.app(),
        host=chosen_host,
        port=chosen_port,
        limits=ConnectionLimits.of(settings.server),
        drops=console.drops,
    ).start()
    click.echo(f"console: {server.url}{PREFIX}/  (Ctrl-C stops it)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


@console_cmd.command("add-user")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice([role.name for role in Role]),
    required=True,
    help="viewer reads; marketer edits rules and opt-outs; approver also approves "
    "announcements; admin also reads the audit log.",
)
@click.option("--language", type=click.Choice(["fa", "en"]), default="fa", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@pass_app
def add_user_cmd(
    app: AppContext, name: str, role: str, language: str, password_stdin: bool
) -> None:
    """Create a console user; the password is asked for (at least 10 characters).

    \b
    Example:
      campaigner console add-user sara --role marketer
      echo "$PASSWORD" | campaigner console add-user ci --role viewer --password-stdin
    """
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with app.sessions().begin() as session:
        add_user(session, name, password, role, language)
    click.echo(f"console user {name} ({role}) created")


COMMANDS = [console_cmd]
