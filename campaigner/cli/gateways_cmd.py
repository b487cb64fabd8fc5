"""`campaigner gateways list`."""

from __future__ import annotations

import click

from campaigner.gateways import available_gateways


@click.group("gateways")
def gateways_group() -> None:
    """SMS gateways installed (built-in and plug-ins)."""


@gateways_group.command("list")
def list_cmd() -> None:
    """List gateway names usable as `gateway.name` in config.toml.

    \b
    Example:
      campaigner gateways list
    """
    for name, target in available_gateways().items():
        click.echo(f"{name:<12} {target}")


COMMANDS = [gateways_group]
