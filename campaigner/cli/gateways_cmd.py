"""`campaigner gateways list`."""

from __future__ import annotations

import click

from campaigner.errors import ConfigError
from campaigner.gateways import available_gateways
from campaigner.gateways.registry import gateway_class


@click.group("gateways")
def gateways_group() -> None:
    """SMS gateways installed (built-in and plug-ins)."""


@gateways_group.command("list")
def list_cmd() -> None:
    """List gateway names usable as `gateway.name` in config.toml, with the most
    messages each sends per request.

    \b
    Example:
      campaigner gateways list
    """
    for name, target in available_gateways().items():
        try:
            batch = f"max_batch={gateway_class(name).max_batch}"
        except (ConfigError, ImportError) as exc:
            batch = f"broken: {exc}"
        click.echo(f"{name:<12} {batch:<16} {target}")


COMMANDS = [gateways_group]
