import shutil
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import create_engine, text

from campaigner.cli import cli


def _project(tmp_path: Path, sqlite_template: Path, source_url: str) -> Path:
    shutil.copyfile(sqlite_template, tmp_path / "campaigner.db")
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[database]
url = "sqlite:///campaigner.db"

[[sources]]
name = "shop"
url = "{source_url}"

[sources.customers]
table = "people"
cursor = "changed"
columns = {{ id = "code", phone = "mobile", first_name = "name" }}
""",
        encoding="utf-8",
    )
    return config


def test_sync_command_loads_and_lists_rejected_rows(tmp_path: Path, sqlite_template: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'shop.db'}")
    with engine.begin() as connection:
        connection.execute(
            text("CREATE TABLE people (code TEXT, name TEXT, mobile TEXT, changed INT)")
        )
        connection.execute(
            text("INSERT INTO people VALUES ('a', 'Ali', '09121234567', 1), ('b', 'B', '12', 2)")
        )
    engine.dispose()
    config = _project(tmp_path, sqlite_template, "sqlite:///shop.db")
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(config), "sync"])
    assert result.exit_code == 0, result.output
    assert "shop: customers 2 read: 1 new" in result.output
    assert "rejected customers b: invalid phone number '12'" in result.output
    again = runner.invoke(cli, ["--config", str(config), "sync", "--source", "shop"])
    assert "customers 0 read" in again.output
    full = runner.invoke(cli, ["--config", str(config), "sync", "--full"])
    assert "customers 2 read: 0 new, 0 updated, 1 unchanged" in full.output


def test_sync_errors_name_the_host_and_config_show_masks_the_password(
    tmp_path: Path, sqlite_template: Path
) -> None:
    config = _project(tmp_path, sqlite_template, "mysql+pymysql://wp:pa55word@127.0.0.1:1/wp")
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(config), "sync"])
    assert result.exit_code == 1
    assert "source 'shop': cannot connect to 127.0.0.1:1" in result.output
    unknown = runner.invoke(cli, ["--config", str(config), "sync", "--source", "nope"])
    assert "no source named 'nope'" in unknown.output
    shown = runner.invoke(cli, ["--config", str(config), "config", "show"])
    assert shown.exit_code == 0, shown.output
    assert "pa55word" not in shown.output
    assert "mysql+pymysql://wp:********@127.0.0.1:1/wp" in shown.output
