"""`campaigner config show`."""

from __future__ import annotations

import json

import click

from campaigner.cli.context import AppContext, pass_app
from campaigner.config import masked
from campaigner.gateways.registry import declared_secret_options


@click.group("config")
def config_group() -> None:
    """Inspect the effective configuration."""


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML-like text.")
@pass_app
def show(app: AppContext, as_json: bool) -> None:
    """Print the effective settings (file + environment) with secrets masked.

    \b
    Example:
      CAMPAIGNER_GATEWAY__API_KEY=... campaigner config show
    """
    data = masked(app.settings, declared_secret_options)
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
        return
    for section, values in data.items():
        if isinstance(values, dict) and section != "gateways":
            _table(f"[{section}]", values)
        elif section == "gateways":
            for name, table in values.items():
                _table(f"[gateways.{name}]", table)
        elif isinstance(values, list):
            for table in values:
                _table(f"[[{section}]]", table)


def _table(title: str, values: dict[str, object]) -> None:
    click.echo(title)
    for key, value in values.items():
        click.echo(f"{key} = {json.dumps(value, ensure_ascii=False, default=str)}")
    click.echo()


COMMANDS = [config_group]
