import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from campaigner.cli import cli


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_help_and_version(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("init", "config", "db", "customers", "orders", "gateways", "demo-data"):
        assert command in result.output
    assert runner.invoke(cli, ["--version"]).output.startswith("campaigner, version")


def test_every_command_has_help_with_an_example(runner: CliRunner) -> None:
    def walk(group: object, path: list[str]) -> list[list[str]]:
        commands = getattr(group, "commands", {})
        found = [path] if not commands else []
        for name, sub in commands.items():
            found += walk(sub, [*path, name])
        return found

    for path in walk(cli, []):
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "Example" in result.output, f"{' '.join(path)} --help has no example"


def test_config_show_masks_secrets(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[gateway]\nname = "kavenegar"\napi_key = "k-s3cret"\n', encoding="utf-8")
    result = runner.invoke(
        cli,
        ["--config", str(config), "config", "show"],
        env={"CAMPAIGNER_SERVER__WEBHOOK_TOKEN": "w-s3cret"},
    )
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    assert 'name = "kavenegar"' in result.output
    assert 'api_key = "********"' in result.output
    as_json = runner.invoke(cli, ["--config", str(config), "config", "show", "--json"])
    assert json.loads(as_json.output)["gateway"]["api_key"] == "********"


def test_user_error_is_one_line_without_traceback(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[sending]\nwindoww = '09:00-20:00'\n", encoding="utf-8")
    result = runner.invoke(cli, ["--config", str(config), "config", "show"])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0
    assert "sending.windoww: unknown key" in result.output
    assert "Traceback" not in result.output


def test_verbose_shows_the_traceback(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        cli, ["--verbose", "--config", str(tmp_path / "missing.toml"), "config", "show"]
    )
    assert result.exit_code == 1
    assert result.exception is not None and "not found" in str(result.exception)


def test_commands_refuse_outdated_schema(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("", encoding="utf-8")
    (tmp_path / "c.csv").write_text("id,phone\na,09121234567\n", encoding="utf-8")
    result = runner.invoke(
        cli, ["--config", str(config), "customers", "import", str(tmp_path / "c.csv")]
    )
    assert result.exit_code == 1
    assert "campaigner db upgrade" in result.output
    assert runner.invoke(cli, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    result = runner.invoke(
        cli, ["--config", str(config), "customers", "import", str(tmp_path / "c.csv")]
    )
    assert result.exit_code == 0, result.output
    assert "1 new" in result.output


def test_init_demo_creates_a_working_project(runner: CliRunner, tmp_path: Path) -> None:
    project = tmp_path / "shop"
    result = runner.invoke(cli, ["init", str(project), "--demo"])
    assert result.exit_code == 0, result.output
    for name in (
        "config.toml",
        "rules/birthday.toml",
        "rules/thank_you.toml",
        "rules/win_back.toml",
        "rules/referral_request.toml",
        "templates/messages/birthday.fa.j2",
        "templates/messages/birthday.en.j2",
    ):
        assert (project / name).exists(), name
    assert "00:00-23:59" in (project / "config.toml").read_text(encoding="utf-8")
    assert "http://127.0.0.1:8025/console/ - demo login demo / demo-console" in result.output
    engine = create_engine(f"sqlite:///{project / 'campaigner.db'}")
    with engine.connect() as connection:
        demo_user = connection.execute(text("select name, role from console_users")).one()
        assert tuple(demo_user) == ("demo", "admin")
        customers = connection.execute(text("select count(*) from customers")).scalar()
        persian = connection.execute(
            text("select count(*) from customers where locale = 'fa'")
        ).scalar()
        jalali = connection.execute(
            text("select count(*) from customers where calendar = 'jalali'")
        ).scalar()
        orders = connection.execute(text("select count(*) from orders")).scalar()
        opted_out = connection.execute(text("select count(*) from opt_outs")).scalar()
        span = connection.execute(
            text("select julianday(max(paid_at)) - julianday(min(paid_at)) from orders")
        ).scalar()
    engine.dispose()
    assert customers == 3000
    assert 1500 < persian < 2700 and jalali > 500
    assert orders > 5000
    assert opted_out > 20
    assert span > 600  # about two years of history
    again = runner.invoke(cli, ["init", str(project)])
    assert again.exit_code == 0
    assert "wrote" not in again.output  # existing files are kept


def test_import_cli_reports_rejects(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("", encoding="utf-8")
    runner.invoke(cli, ["--config", str(config), "db", "upgrade"])
    data = tmp_path / "people.csv"
    data.write_text("Code,Mobile\na,09121234567\nb,12\n", encoding="utf-8")
    result = runner.invoke(
        cli,
        [
            "--config",
            str(config),
            "customers",
            "import",
            str(data),
            "--map",
            "Code=external_id",
            "--map",
            "Mobile=phone",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "1 new" in result.output and "1 rejected" in result.output
    assert (tmp_path / "people.rejects.csv").exists()
    bad = runner.invoke(
        cli, ["--config", str(config), "customers", "import", str(data), "--map", "Code"]
    )
    assert bad.exit_code == 1 and "HEADER=FIELD" in bad.output


def test_gateways_list(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["gateways", "list"])
    assert "console" in result.output and "file" in result.output
