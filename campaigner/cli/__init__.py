"""The `campaigner` command line: thin commands over the library."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from typing import Any

import click
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from campaigner import __version__
from campaigner.cli.context import AppContext
from campaigner.db.errors import describe_database_error
from campaigner.display import shown
from campaigner.errors import CampaignerError
from campaigner.logs import configure_logging
from campaigner.masking import mask


class CampaignerGroup(click.Group):
    """Turns user errors into one clear line and a non-zero exit; tracebacks need --verbose."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _reader_gone()
            ctx.exit(1)
        except (CampaignerError, ValidationError, OSError, DBAPIError) as exc:
            app = ctx.find_object(AppContext)
            if app is not None and app.verbose:
                raise
            if isinstance(exc, DBAPIError):
                message = describe_database_error(exc, app.database_url if app else None)
            else:
                message = str(exc)
            click.echo(f"Error: {shown(mask(message))}", err=True)
            ctx.exit(1)


def _reader_gone() -> None:
    """The reading end of stdout closed early (`campaigner history | head -1`): stop quietly,
    as `head` asked. What is still buffered goes to /dev/null, so that Python's flush at exit
    cannot print a BrokenPipeError of its own."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


@click.group(cls=CampaignerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help=(
        "The project's configuration file (default: $CAMPAIGNER_CONFIG, else config.toml "
        "in this directory or the nearest parent that has one)."
    ),
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging, and tracebacks on errors.")
@click.version_option(__version__, prog_name="campaigner")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
    """Campaigner: personal SMS campaigns that go out once, at a decent hour.

    \b
    Example:
      campaigner init myshop --demo && cd myshop && campaigner run
    """
    configure_logging(verbose=verbose)
    ctx.obj = AppContext(config_path=config_path, verbose=verbose)
    ctx.call_on_close(ctx.obj.close)


def _register() -> None:
    """Every module in this package that defines COMMANDS contributes them."""
    package = importlib.import_module(__name__)
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for command in getattr(module, "COMMANDS", []):
            cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="campaigner")
