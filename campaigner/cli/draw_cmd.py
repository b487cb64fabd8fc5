"""`campaigner draw NAME --from … --winners N` and `campaigner draw show NAME`."""

from __future__ import annotations

import getpass
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from campaigner.announcements.draws import (
    draw,
    file_candidates,
    load_draw,
    proof,
    rule_candidates,
    winner_names,
)
from campaigner.cli.context import AppContext, pass_app
from campaigner.clock import SystemClock
from campaigner.display import shown
from campaigner.errors import CampaignerError
from campaigner.preview import load_rule


class DrawGroup(click.Group):
    """`draw NAME …` runs a draw; `draw show NAME` shows one."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group("draw", cls=DrawGroup)
def draw_group() -> None:
    """Prize draws (قرعه‌کشی) anyone can check; `draw_winner` rules message the winners.

    \b
    Examples:
      campaigner draw yalda_prize --from yalda_sale --winners 3
      campaigner draw loyal_prize --from rules/lists/loyal.csv --winners 1 --seed 1404-yalda
      campaigner draw show yalda_prize
    """


@draw_group.command("run")
@click.argument("name")
@click.option(
    "--from",
    "source",
    required=True,
    help="A rule name (its audience) or a customers file (CSV of external ids or phones).",
)
@click.option("--winners", type=click.IntRange(1), required=True, help="How many win.")
@click.option("--seed", default=None, help="The seed (default: a random one, recorded).")
@click.option("--by", "by", default=None, help="Who draws (default: the login name).")
@pass_app
def run_command(
    app: AppContext, name: str, source: str, winners: int, seed: str | None, by: str | None
) -> None:
    """Pick the winners among the eligible customers of a rule or a customers file.

    Eligible: a working phone, not opted out, consent for marketing, in the audience. The
    seed and the SHA-256 of the sorted candidate ids are recorded, so the same seed and
    candidates give the same winners anywhere; NAME is never drawn twice. Also reachable
    as `campaigner draw NAME …`.

    \b
    Example:
      campaigner draw yalda_prize --from yalda_sale --winners 3 --seed 1404-yalda
    """
    settings = app.settings
    sessions = app.sessions()
    path = Path(source)
    now = SystemClock().now()
    with sessions.begin() as session:
        if path.suffix.lower() in (".csv", ".txt") or path.is_file():
            if not path.is_file():
                raise CampaignerError(f"{source}: customers file not found")
            candidates = file_candidates(session, path, settings.customers.region)
            described = f"customers file {path}"
        else:
            rule = load_rule(settings, source)
            candidates = rule_candidates(session, rule, ZoneInfo(settings.customers.timezone), now)
            described = f"rule {rule.name} ({rule.trigger})"
        found = draw(
            session,
            name,
            described,
            candidates,
            winners,
            seed=seed,
            by=by or getpass.getuser(),
            now=now,
        )
        lines = proof(found, winner_names(session, found))
    for line in lines:
        click.echo(shown(line))


@draw_group.command("show")
@click.argument("name")
@pass_app
def show_command(app: AppContext, name: str) -> None:
    """Print a draw's proof: seed, candidate hash, winners, and how to check them.

    \b
    Example:
      campaigner draw show yalda_prize
    """
    with app.sessions()() as session:
        found = load_draw(session, name)
        lines = proof(found, winner_names(session, found))
    for line in lines:
        click.echo(shown(line))


COMMANDS = [draw_group]
