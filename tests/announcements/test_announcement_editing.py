"""Editing an announcement after its sending started: a changed customers file reaches the
new customers only, never anyone twice; a moved `at` is refused (the daemon keeps the last
good version); moved before anything went out, the old one is withdrawn."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from announcement_shop import add_customers, ledger, sent_to, utc, write_announcement
from click.testing import CliRunner
from conftest import CaptureGateway
from sqlalchemy.orm import Session, sessionmaker

from campaigner.cli import cli
from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.runtime import Runtime

TEN_IN_TEHRAN = utc(2026, 12, 20, 6, 30)


def listed(settings: Settings, *lines: str) -> None:
    folder = settings.paths.rules / "lists"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vip.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_customers_file_edited_after_sending_started_reaches_nobody_twice(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    add_customers(sessions, 4, zones=("Asia/Tehran",))
    listed(settings, "customer", "c0", "c1")
    write_announcement(
        settings,
        'at = "2026-12-20T10:00"\napproved = true\n[audience]\ncustomers_file = "lists/vip.csv"\n',
    )
    clock = FixedClock(TEN_IN_TEHRAN)
    gateway = CaptureGateway()
    runtime = Runtime.build(settings, clock=clock, sessions=sessions, gateway=gateway)
    runtime.plan()
    runtime.drain()
    assert sorted(sent_to(gateway)) == ["+989120000000", "+989120000001"]
    listed(settings, "c0", "c1", "۰۹۱۲۰۰۰۰۰۰۲")  # c2 by phone, in Persian digits
    assert runtime.rulebook.changed_on_disk()  # the daemon reloads on its next tick
    runtime.rulebook.reload()
    clock.advance(timedelta(minutes=15))
    runtime.plan()
    runtime.drain()
    assert sorted(sent_to(gateway)) == ["+989120000000", "+989120000001", "+989120000002"]
    assert len(ledger(sessions)) == 3
    runtime.close()


def test_moving_at_after_sending_started_is_refused_and_the_daemon_keeps_the_old_one(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path, db_url: str
) -> None:
    add_customers(sessions, 3, zones=("Asia/Tehran",))
    path = write_announcement(settings, 'at = "2026-12-20T10:00"\napproved = true\n')
    clock = FixedClock(TEN_IN_TEHRAN)
    gateway = CaptureGateway()
    runtime = Runtime.build(settings, clock=clock, sessions=sessions, gateway=gateway)
    runtime.plan()
    runtime.drain()
    assert len(gateway.sent) == 3
    path.write_text(
        path.read_text(encoding="utf-8").replace("2026-12-20T10:00", "2026-12-21T10:00"),
        encoding="utf-8",
    )
    problems = runtime.rulebook.reload()
    problem = (
        f"{path}: rule 'yalda_sale': at: changed to 2026-12-21T10:00 after sending started at "
        '2026-12-20T10:00: keep at = "2026-12-20T10:00", or copy the file under a new name '
        "for a new announcement"
    )
    assert [str(p) for p in problems] == [problem]
    kept = runtime.rulebook.get("yalda_sale")
    assert kept is not None and kept.occurrence_key == "2026-12-20T10:00"  # type: ignore[attr-defined]
    clock.advance(timedelta(days=1))
    runtime.plan()
    runtime.drain()
    assert len(gateway.sent) == 3
    assert {row.status for row in ledger(sessions)} == {"sent"}
    runtime.close()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n[paths]\nrules = "{settings.paths.rules}"\n'
        f'templates = "{settings.paths.templates}"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["--config", str(config), "rules", "check"])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [problem]


def test_moving_at_before_anything_went_out_withdraws_the_old_and_awaits_approval(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    add_customers(sessions, 2, zones=("Asia/Tehran",))
    path = write_announcement(settings, 'at = "2026-12-20T10:00"\napproved = true\n')
    clock = FixedClock(utc(2026, 12, 19, 8))
    runtime = Runtime.build(settings, clock=clock, sessions=sessions, gateway=CaptureGateway())
    runtime.plan()
    path.write_text(
        'trigger = "announcement"\ntemplate = "sale.j2"\nat = "2026-12-21T10:00"\n',
        encoding="utf-8",
    )
    assert runtime.rulebook.reload() == []
    report = runtime.plan()
    assert report.cancelled == 2
    assert report.rules["yalda_sale"].awaiting_approval
    assert {(r.occurrence_key, r.status) for r in ledger(sessions)} == {
        ("2026-12-20T10:00", "cancelled")
    }
    runtime.close()


def test_a_daemon_restarted_on_a_broken_announcement_file_cancels_nothing(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    add_customers(sessions, 2, zones=("Asia/Tehran",))
    path = write_announcement(settings, 'at = "2026-12-20T10:00"\napproved = true\n')
    clock = FixedClock(utc(2026, 12, 19, 8))
    first = Runtime.build(settings, clock=clock, sessions=sessions, gateway=CaptureGateway())
    first.plan()
    first.close()
    path.write_text(path.read_text(encoding="utf-8") + "spred = '3h'\n", encoding="utf-8")
    restarted = Runtime.build(settings, clock=clock, sessions=sessions, gateway=CaptureGateway())
    assert [p.field for p in restarted.rulebook.problems] == ["spred"]
    assert restarted.plan().cancelled == 0
    assert {row.status for row in ledger(sessions)} == {"queued"}
    path.write_text(path.read_text(encoding="utf-8").replace("spred = '3h'\n", ""), "utf-8")
    restarted.rulebook.reload()
    clock.set(TEN_IN_TEHRAN)
    restarted.plan()
    restarted.drain()
    assert {row.status for row in ledger(sessions)} == {"sent"}
    restarted.close()
