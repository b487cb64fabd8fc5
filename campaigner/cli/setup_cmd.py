"""`campaigner init` and `campaigner demo-data`."""

from __future__ import annotations

from pathlib import Path

import click

from campaigner.cli.context import AppContext, pass_app
from campaigner.clock import SystemClock
from campaigner.console.users import add_user
from campaigner.customers.demo import generate_demo
from campaigner.project import create_project


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--demo", is_flag=True, help="Also fill the database with a synthetic demo shop.")
@click.option("--force", is_flag=True, help="Overwrite sample files that already exist.")
def init_cmd(directory: Path, demo: bool, force: bool) -> None:
    """Create a project: config.toml, sample rules and templates, and the database.

    Existing files are kept unless --force is given. With --demo, the config uses the
    console gateway and an all-day send window so that the demo shows messages at once.

    \b
    Example:
      campaigner init myshop --demo
    """
    written = create_project(directory, demo=demo, force=force)
    for path in written:
        click.echo(f"wrote {path}")
    if demo:
        app = AppContext(config_path=str(directory / "config.toml"))
        try:
            _fill_demo(app)
            with app.sessions().begin() as session:
                add_user(session, DEMO_USER, DEMO_PASSWORD, "admin", "fa")
        finally:
            app.close()
        click.echo(
            f"web console (once running): http://127.0.0.1:8025/console/ "
            f"- demo login {DEMO_USER} / {DEMO_PASSWORD}"
        )
    click.echo(f"ready: cd {directory} && campaigner run")


@click.command("demo-data")
@click.option("--customers", default=3000, show_default=True, help="How many customers to create.")
@click.option("--seed", default=7, show_default=True, help="Random seed (same seed, same shop).")
@pass_app
def demo_data_cmd(app: AppContext, customers: int, seed: int) -> None:
    """Fill the database with a realistic synthetic shop (Persian and English customers).

    \b
    Example:
      campaigner demo-data --customers 5000
    """
    _fill_demo(app, customers=customers, seed=seed)


# Only for the demo shop, whose data is made up: a real shop adds its own users.
DEMO_USER, DEMO_PASSWORD = "demo", "demo-console"


def _fill_demo(app: AppContext, customers: int = 3000, seed: int = 7) -> None:
    summary = generate_demo(
        app.sessions(),
        app.settings.customers,
        SystemClock(),
        customers=customers,
        seed=seed,
    )
    click.echo(summary)


COMMANDS = [init_cmd, demo_data_cmd]
