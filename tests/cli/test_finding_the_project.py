"""Commands find their project like git finds its repository, and never create an empty
database by accident."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from campaigner.cli import cli


@pytest.fixture(autouse=True)
def _no_config_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAMPAIGNER_CONFIG", raising=False)


@pytest.mark.parametrize(
    "command", [["status"], ["db", "upgrade"], ["db", "status"], ["run"], ["config", "show"]]
)
def test_outside_a_project_a_command_says_so_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    assert not any((p / "config.toml").exists() for p in tmp_path.parents), "a stray config"
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1, result.output
    assert result.output.startswith(f"Error: no config.toml in {tmp_path} or any parent")
    assert "campaigner init" in result.output and "--config" in result.output
    assert list(tmp_path.iterdir()) == []


def test_commands_that_need_no_project_work_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(cli, ["--help"]).exit_code == 0
    assert runner.invoke(cli, ["status", "--help"]).exit_code == 0
    listed = runner.invoke(cli, ["gateways", "list"])
    assert listed.exit_code == 0 and "kannel" in listed.output
    assert runner.invoke(cli, ["init", "shop"]).exit_code == 0
    assert (tmp_path / "shop" / "config.toml").is_file()


def test_a_command_in_a_subdirectory_uses_the_project_above(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["init", str(tmp_path / "shop")]).exit_code == 0
    monkeypatch.chdir(tmp_path / "shop" / "templates" / "messages")
    result = runner.invoke(cli, ["db", "status"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
    checked = runner.invoke(cli, ["rules", "check"])
    assert checked.exit_code == 0, checked.output
    assert not (tmp_path / "shop" / "templates" / "messages" / "campaigner.db").exists()


def test_a_missing_sqlite_file_is_reported_not_created(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("", encoding="utf-8")
    database = tmp_path / "campaigner.db"
    runner = CliRunner()
    for command in (["status"], ["optout", "list"], ["run", "--once"]):
        result = runner.invoke(cli, ["--config", str(config), *command])
        assert result.exit_code == 1, command
        assert result.output == (
            f"Error: no database at {database} yet: run `campaigner db upgrade` to create it\n"
        )
    status = runner.invoke(cli, ["--config", str(config), "db", "status"])
    assert status.exit_code == 0 and "campaigner db upgrade" in status.output
    assert not database.exists()
    assert runner.invoke(cli, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    assert database.exists()
