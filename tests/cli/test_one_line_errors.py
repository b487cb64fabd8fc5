"""Every failure an operator can expect ends a command with one line naming the problem and
a non-zero exit; `-v` still shows the traceback."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.exc import OperationalError

from campaigner.cli import cli


def one_line_error(result: Result) -> str:
    """The error line; log lines (from `run`) may come before it, a traceback never."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.output
    assert result.output.rstrip("\n").splitlines()[-1] == errors[0]
    return errors[0]


def invoke(config: Path, *args: str, **env: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], env=env)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An initialised SQLite project (sample config, rules, templates, migrated database)."""
    root = tmp_path / "shop"
    assert CliRunner().invoke(cli, ["init", str(root)]).exit_code == 0
    return root


@pytest.mark.parametrize(
    "command",
    [["db", "upgrade"], ["db", "status"], ["status"], ["run"], ["run", "--once"], ["report"]],
)
def test_an_unreachable_database_is_one_line(
    tmp_path: Path, refused_port: int, command: list[str]
) -> None:
    config = tmp_path / "config.toml"
    url = f"postgresql+psycopg://bob:pg-s3cret@127.0.0.1:{refused_port}/shop"
    config.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
    error = one_line_error(invoke(config, *command))
    assert f"postgresql+psycopg://bob:********@127.0.0.1:{refused_port}/shop" in error
    assert "Connection refused" in error
    assert "s3cret" not in error


def test_init_with_an_unreachable_database_is_one_line(tmp_path: Path, refused_port: int) -> None:
    url = f"postgresql+psycopg://bob:pg-s3cret@127.0.0.1:{refused_port}/shop"
    result = CliRunner().invoke(
        cli, ["init", str(tmp_path / "shop")], env={"CAMPAIGNER_DATABASE__URL": url}
    )
    error = one_line_error(result)
    assert f"127.0.0.1:{refused_port}" in error and "Connection refused" in error
    assert "s3cret" not in error


def test_verbose_shows_the_traceback_of_a_database_error(tmp_path: Path, refused_port: int) -> None:
    config = tmp_path / "config.toml"
    url = f"postgresql+psycopg://bob@127.0.0.1:{refused_port}/shop"
    config.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["-v", "--config", str(config), "status"])
    assert result.exit_code == 1
    assert isinstance(result.exception, OperationalError)


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Path]:
    """A project whose SQLite database another process holds the write lock of."""
    config = tmp_path / "config.toml"
    config.write_text("[database]\nlock_timeout = 0.2\n", encoding="utf-8")
    assert invoke(config, "db", "upgrade").exit_code == 0
    holder = sqlite3.connect(tmp_path / "campaigner.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield config
    finally:
        holder.rollback()
        holder.close()


@pytest.mark.parametrize(
    "command", [["status"], ["db", "upgrade"], ["optout", "add", "09121234567"]]
)
def test_a_locked_sqlite_database_is_one_line(locked: Path, command: list[str]) -> None:
    error = one_line_error(invoke(locked, *command))
    assert str(locked.parent / "campaigner.db") in error
    assert "is locked" in error and "database.lock_timeout" in error


FUTURE = "9999_from_a_newer_campaigner"


@pytest.mark.parametrize(
    "command",
    [["status"], ["db", "upgrade"], ["db", "status"], ["run"], ["optout", "list"]],
)
def test_a_schema_newer_than_the_code_says_upgrade_campaigner(
    project: Path, command: list[str]
) -> None:
    database = project / "campaigner.db"
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE alembic_version SET version_num = ?", (FUTURE,))
    error = one_line_error(invoke(project / "config.toml", *command))
    assert error == (
        f"Error: this database was migrated by a newer Campaigner (revision {FUTURE}); "
        "upgrade Campaigner"
    )
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (FUTURE,)
        ]


def test_a_port_in_use_names_the_port_and_how_to_change_it(project: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke(project / "config.toml", "run", CAMPAIGNER_SERVER__PORT=str(port))
    error = one_line_error(result)
    assert f"127.0.0.1:{port}" in error and "in use" in error
    assert "server.port" in error and "CAMPAIGNER_SERVER__PORT" in error


def test_a_bad_value_names_the_environment_variable_or_the_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[sending]\nmax_attempts = 3\n", encoding="utf-8")
    error = one_line_error(
        invoke(config, "config", "show", CAMPAIGNER_SENDING__MAX_ATTEMPTS="many")
    )
    assert error.startswith(
        "Error: environment variable CAMPAIGNER_SENDING__MAX_ATTEMPTS: sending.max_attempts: "
    )
    config.write_text('[sending]\nmax_attempts = "many"\n', encoding="utf-8")
    error = one_line_error(invoke(config, "config", "show"))
    assert error.startswith(f"Error: {config}: sending.max_attempts: ")


@pytest.mark.parametrize(
    "command",
    [
        ["config", "show"],
        ["rules", "check"],
        ["db", "upgrade"],
        ["db", "status"],
        ["status"],
        ["report"],
        ["sync"],
        ["simulate", "--start", "2026-03-01", "--days", "1"],
        ["run", "--once"],
    ],
)
def test_an_unknown_gateway_stops_every_command_that_loads_settings(
    project: Path, command: list[str]
) -> None:
    config = project / "config.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace('name = "console"', 'name = "kavenegr"'),
        encoding="utf-8",
    )
    error = one_line_error(invoke(config, *command))
    assert error.startswith(f"Error: {config}: gateway.name: unknown gateway 'kavenegr' (")
    assert "kavenegar" in error  # the installed ones are listed
    from_env = one_line_error(invoke(config, *command, CAMPAIGNER_GATEWAY__NAME="twillio"))
    assert from_env.startswith("Error: environment variable CAMPAIGNER_GATEWAY__NAME: ")


def test_a_fallback_without_its_table_is_named(project: Path) -> None:
    config = project / "config.toml"
    result = invoke(config, "status", CAMPAIGNER_GATEWAY__FALLBACK="backup")
    error = one_line_error(result)
    assert "gateway.fallback: no [gateways.backup] table" in error
    assert error.startswith("Error: environment variable CAMPAIGNER_GATEWAY__FALLBACK: ")


def test_previewing_a_rule_file_that_does_not_load_names_its_problem(project: Path) -> None:
    (project / "rules" / "broken.toml").write_text('trigger = "post_purchase"\ndelay = 2h\n')
    error = one_line_error(invoke(project / "config.toml", "preview", "broken"))
    assert error.startswith("Error: rule 'broken' exists but failed to load: ")
    assert "broken.toml: TOML syntax error" in error and "line 2" in error
