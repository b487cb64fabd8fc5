import json
from datetime import date
from pathlib import Path

from click.testing import CliRunner

from campaigner.cli import cli

KEYS = {"at", "rule", "customer_id", "phone", "text", "segments", "encoding"}


def test_simulate_json_and_table_over_the_demo_shop(tmp_path: Path) -> None:
    runner = CliRunner()
    project = tmp_path / "shop"
    assert runner.invoke(cli, ["init", str(project), "--demo"]).exit_code == 0
    base = ["--config", str(project / "config.toml"), "simulate", "--start"]
    database = project / "campaigner.db"
    content = database.read_bytes()

    result = runner.invoke(cli, [*base, "2020-01-01", "--days", "1", "--json"])
    assert result.exit_code == 0, result.output
    rules = {json.loads(line)["rule"] for line in result.stdout.splitlines()}
    assert "thank_you" not in rules  # the demo's orders all lie after 2020

    today = date.today().isoformat()
    result = runner.invoke(cli, [*base, today, "--days", "2", "--json"])
    assert result.exit_code == 0, result.output
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    assert messages
    for message in messages:
        assert set(message) == KEYS
        assert message["at"][-6:] == "+03:30"
        assert message["phone"].startswith("+")
        assert message["encoding"] in ("gsm7", "ucs2")
        assert isinstance(message["segments"], int)
    assert {m["encoding"] for m in messages} == {"gsm7", "ucs2"}

    result = runner.invoke(cli, [*base, today, "--days", "2"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("DAY"))
    assert header.split()[-1] == "TOTAL"
    assert lines[-1].split()[-1] == str(len(messages))
    assert database.read_bytes() == content
