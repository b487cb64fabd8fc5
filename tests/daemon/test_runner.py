"""The daemon's Service in-process: what a failing rule looks like on /healthz and in status."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner
from conftest import FixedRules, add_paid_order
from pydantic import TypeAdapter
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from campaigner.cli import cli
from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.daemon.runner import Service
from campaigner.rules.models import Rule


def thanks(name: str) -> Rule:
    return TypeAdapter(Rule).validate_python(
        {"name": name, "trigger": "post_purchase", "template": "x", "delay": "2h"}
    )


def test_a_rule_failing_to_plan_shows_on_healthz_and_in_status(
    settings: Settings,
    engine: Engine,
    sessions: sessionmaker[Session],
    clock: FixedClock,
    tmp_path: Path,
    db_url: str,
) -> None:
    settings.paths.rules.mkdir()
    settings.paths.templates.mkdir()
    add_paid_order(sessions, clock, 1)
    service = Service(settings, engine=engine, sessions=sessions, clock=clock)
    broken = thanks("broken").model_copy(update={"priority": 2**70})
    service.runtime.rulebook = FixedRules(broken, thanks("thank_you"))  # type: ignore[assignment]
    try:
        assert service.plan() is True  # the thank-you was planned
        _, body = service.health.report()
        failure = body["plan_failures"]["broken"]
        assert failure["failures"] == 1 and failure["since"] == clock.now().isoformat()
        assert failure["retry_at"] == (clock.now() + timedelta(minutes=1)).isoformat()
        assert "\n" not in failure["error"] and len(failure["error"]) <= 300
        service.heartbeat()
    finally:
        service.runtime.close()
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(config), "status"])
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.output.splitlines() if "rule broken" in line]
    assert line.strip().startswith(
        f"rule broken failed to plan 1 time since {clock.now():%Y-%m-%d %H:%M} UTC: "
    )
    assert line.endswith(
        f"next try {clock.now() + timedelta(minutes=1):%H:%M} UTC or when its file changes"
    )
