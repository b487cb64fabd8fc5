"""Cancelled announcement messages in `history`, `status` and `report` (table and JSON)."""

from __future__ import annotations

import json
from pathlib import Path

from announcement_shop import add_customers, utc, write_announcement
from click.testing import CliRunner
from conftest import CaptureGateway
from sqlalchemy.orm import Session, sessionmaker

from campaigner.cli import cli
from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.runtime import Runtime


def test_history_status_and_report_show_cancelled(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path, db_url: str
) -> None:
    add_customers(sessions, 2, zones=("Asia/Tehran",))
    path = write_announcement(settings, 'at = "2026-12-20T10:00"\napproved = true\n')
    runtime = Runtime.build(
        settings,
        clock=FixedClock(utc(2026, 12, 19, 8)),
        sessions=sessions,
        gateway=CaptureGateway(),
    )
    runtime.plan()
    path.unlink()
    runtime.rulebook.reload()
    assert runtime.plan().cancelled == 2
    runtime.close()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n[paths]\nrules = "{settings.paths.rules}"\n'
        f'templates = "{settings.paths.templates}"\n',
        encoding="utf-8",
    )

    def run(*args: str) -> str:
        result = CliRunner().invoke(cli, ["--config", str(config), *args])
        assert result.exit_code == 0, result.output
        return result.stdout

    history = run("history", "--customer", "c0")
    assert "yalda_sale [2026-12-20T10:00] cancelled (rule_withdrawn) to +989120000000" in history
    status = run("status")
    assert "  cancelled           2" in status
    table = run("report", "--since", "2026-12-01", "--until", "2026-12-31")
    assert "cancelled" in table and "rule_withdrawn" in table
    data = json.loads(
        run("report", "--since", "2026-12-01", "--until", "2026-12-31", "--format", "json")
    )
    [rule] = [r for r in data["rules"] if r["rule"] == "yalda_sale"]
    assert (rule["planned"], rule["cancelled"], rule["sent"]) == (2, 2, 0)
