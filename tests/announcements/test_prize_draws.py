"""Prize draws: reproducible from the seed and the candidates (on SQLite and PostgreSQL),
never re-drawn, only among eligible customers, and `draw_winner` rules tell the winners once."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from announcement_shop import add_customers, ledger, rule, sent_to, utc
from click.testing import CliRunner
from conftest import CaptureGateway
from sqlalchemy import delete, update
from sqlalchemy.orm import Session, sessionmaker

from campaigner.announcements.draws import draw, file_candidates, rule_candidates
from campaigner.cli import cli
from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.db.models import Customer, Draw, OptOut
from campaigner.errors import CampaignerError
from campaigner.runtime import Runtime

NOW = utc(2026, 12, 21, 8)
TEHRAN = ZoneInfo("Asia/Tehran")


def independent_winners(seed: str, external_ids: list[str], count: int) -> list[str]:
    """The method `draw show` states, written out again: rank by SHA-256 of 'seed:id'."""
    ranked = sorted(external_ids, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())
    return ranked[:count]


def run_draw(sessions: sessionmaker[Session], name: str, seed: str | None = "yalda-1404") -> Draw:
    with sessions.begin() as session:
        candidates = rule_candidates(session, rule(at="2026-12-20T10:00"), TEHRAN, NOW)
        found = draw(session, name, "rule yalda_sale", candidates, 3, seed=seed, by="ali", now=NOW)
        session.expunge_all()
        return found


def winners_of(sessions: sessionmaker[Session], name: str) -> list[str]:
    with sessions() as session:
        found = session.query(Draw).filter(Draw.name == name).one()
        return [winner.external_id for winner in found.winners]


def test_a_draw_re_run_gives_identical_winners(sessions: sessionmaker[Session]) -> None:
    add_customers(sessions, 40)
    first = run_draw(sessions, "yalda_prize")
    winners = winners_of(sessions, "yalda_prize")
    ids = [f"c{n}" for n in range(40)]
    assert winners == independent_winners("yalda-1404", ids, 3)
    expected_hash = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()
    assert (first.seed, first.candidates, first.candidates_sha256) == (
        "yalda-1404",
        40,
        expected_hash,
    )
    with sessions.begin() as session:
        session.execute(delete(Draw))
    run_draw(sessions, "yalda_prize")
    assert winners_of(sessions, "yalda_prize") == winners
    run_draw(sessions, "other_seed", seed="another")
    assert winners_of(sessions, "other_seed") == independent_winners("another", ids, 3)


def test_a_draw_is_never_redrawn_and_needs_enough_candidates(
    sessions: sessionmaker[Session],
) -> None:
    add_customers(sessions, 4)
    run_draw(sessions, "yalda_prize")
    with pytest.raises(CampaignerError, match="draw 'yalda_prize' exists already"):
        run_draw(sessions, "yalda_prize")
    with sessions.begin() as session:
        session.execute(update(Customer).values(marketing_consent=False))
    with pytest.raises(CampaignerError, match=r"only 0 eligible customer\(s\) in rule"):
        run_draw(sessions, "second")


def test_only_eligible_customers_named_in_the_file_are_candidates(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    add_customers(sessions, 5)
    with sessions.begin() as session:
        session.add(OptOut(phone="+989120000001"))
        session.execute(
            update(Customer).where(Customer.external_id == "c2").values(marketing_consent=False)
        )
    path = tmp_path / "loyal.csv"
    path.write_text("c0\n09120000001\nc2\n+989120000003\n", encoding="utf-8")
    with sessions() as session:
        found = file_candidates(session, path, "IR")
    assert sorted(c.external_id for c in found) == ["c0", "c3"]


def test_draw_winner_rules_message_the_winners_once(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    add_customers(sessions, 10, zones=("Asia/Tehran",))
    settings.paths.rules.mkdir()
    settings.paths.templates.mkdir()
    (settings.paths.rules / "prize.toml").write_text(
        'trigger = "draw_winner"\ntemplate = "prize.j2"\ndraw = "yalda_prize"\n', encoding="utf-8"
    )
    (settings.paths.templates / "prize.j2").write_text(
        "{{ first_name }} عزیز، شما برنده‌ی قرعه‌کشی یلدا شدید!", encoding="utf-8"
    )
    clock = FixedClock(NOW)
    gateway = CaptureGateway()
    runtime = Runtime.build(settings, clock=clock, sessions=sessions, gateway=gateway)
    runtime.plan()
    assert ledger(sessions, "prize") == []
    run_draw(sessions, "yalda_prize")
    clock.advance(timedelta(minutes=1))
    runtime.plan()
    runtime.drain()
    winners = winners_of(sessions, "yalda_prize")
    assert sorted(sent_to(gateway)) == sorted(f"+98912{int(w[1:]):07d}" for w in winners)
    assert all("برنده‌ی قرعه‌کشی" in message.text for message in gateway.sent)
    clock.advance(timedelta(hours=1))
    runtime.plan()
    runtime.drain()
    assert len(gateway.sent) == 3
    assert {row.occurrence_key for row in ledger(sessions, "prize")} == {"yalda_prize"}
    runtime.close()


def test_draw_and_draw_show_on_the_command_line(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session]
) -> None:
    add_customers(sessions, 8)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "yalda_sale.toml").write_text(
        'trigger = "announcement"\ntemplate = "sale.j2"\nat = "2026-12-20T10:00"\n',
        encoding="utf-8",
    )
    (tmp_path / "sale.j2").write_text("Hi {{ first_name }}", encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n[paths]\nrules = "{rules}"\ntemplates = "{tmp_path}"\n',
        encoding="utf-8",
    )
    base = ["--config", str(config), "draw"]
    drawn = CliRunner().invoke(
        cli, [*base, "yalda_prize", "--from", "yalda_sale", "--winners", "2", "--seed", "s1"]
    )
    assert drawn.exit_code == 0, drawn.output
    winners = independent_winners("s1", [f"c{n}" for n in range(8)], 2)
    shown = CliRunner().invoke(cli, [*base, "show", "yalda_prize"])
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0] == "draw yalda_prize"
    assert "  from: rule yalda_sale (announcement)" in lines
    assert "  candidates: 8" in lines
    assert "  seed: s1" in lines
    assert f"    1. {winners[0]} ({winners[0].upper()})" in lines
    assert f"    2. {winners[1]} ({winners[1].upper()})" in lines
    assert drawn.stdout == shown.stdout
    again = CliRunner().invoke(
        cli, [*base, "yalda_prize", "--from", "yalda_sale", "--winners", "2"]
    )
    assert again.exit_code == 1
    assert again.stderr.strip() == (
        "Error: draw 'yalda_prize' exists already: a draw is never re-drawn"
    )
