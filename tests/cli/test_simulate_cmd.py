import json
from datetime import date
from pathlib import Path

from click.testing import CliRunner
from shop_builders import add_customer, add_order, local

from campaigner.cli import cli
from campaigner.db import create_engine_for, session_factory

KEYS = {"at", "rule", "customer_id", "phone", "status", "reason", "text", "segments", "encoding"}


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
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    messages = [line for line in lines if line["status"] == "sent"]
    assert messages
    for message in lines:
        assert set(message) == KEYS
        assert message["at"][-6:] == "+03:30"
        assert message["phone"].startswith("+")
    for message in messages:
        assert message["reason"] is None
        assert message["encoding"] in ("gsm7", "ucs2")
        assert isinstance(message["segments"], int)
    assert {m["encoding"] for m in messages} == {"gsm7", "ucs2"}
    assert all(line["text"] is None for line in lines if line["status"] != "sent")

    result = runner.invoke(cli, [*base, today, "--days", "2"])
    assert result.exit_code == 0, result.output
    output = result.stdout.splitlines()
    header = next(line for line in output if line.startswith("DAY"))
    assert header.split()[-1] == "TOTAL"
    total = next(line for line in output if line.startswith("TOTAL"))
    assert total.split()[-1] == str(len(messages))
    by_rule = output[output.index(next(line for line in output if line.startswith("RULE"))) :]
    sent = sum(int(line.split()[1]) for line in by_rule[1:])
    assert sent == len(messages)
    assert database.read_bytes() == content


def six_birthdays(project: Path) -> None:
    """Seen: six birthdays on 20 March, three of them with a thank-you due that morning."""
    engine = create_engine_for(f"sqlite:///{project / 'campaigner.db'}")
    with session_factory(engine).begin() as session:
        for n in range(1, 7):
            customer = add_customer(
                session, f"c{n}", f"+98912000000{n}", birthday=date(1990, 3, 20)
            )
            if n <= 2:
                add_order(session, customer, f"O{n}", local(20, 6, 30))  # thank-you due 08:30
            elif n == 3:
                add_order(session, customer, f"O{n}", local(20, 7, 30))  # due 09:30
    engine.dispose()


def test_simulate_accounts_for_every_birthday_wish_and_every_thank_you(tmp_path: Path) -> None:
    runner = CliRunner()
    project = tmp_path / "shop"
    assert runner.invoke(cli, ["init", str(project)]).exit_code == 0
    six_birthdays(project)
    base = ["--config", str(project / "config.toml"), "simulate", "--start", "2026-03-20"]

    result = runner.invoke(cli, [*base, "--days", "1", "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(set(line) == KEYS for line in lines)
    outcomes = sorted(
        (m["rule"], m["customer_id"], m["status"], m["reason"], m["at"]) for m in lines
    )
    assert outcomes == [
        *(("birthday", f"c{n}", "sent", None, "2026-03-20T10:00:00+03:30") for n in range(1, 7)),
        # Due 08:30: waited for the birthday at 10:00, then nothing was left before it expired.
        ("thank_you", "c1", "skipped", "cap_priority", "2026-03-20T10:00:00+03:30"),
        ("thank_you", "c2", "skipped", "cap_priority", "2026-03-20T10:00:00+03:30"),
        # Due 09:30: good until 09:30 tomorrow, so it goes at 09:00, after this period.
        ("thank_you", "c3", "deferred", "cap_priority", "2026-03-21T09:00:00+03:30"),
    ]
    sent = [m for m in lines if m["status"] == "sent"]
    assert all(m["text"].startswith("Happy birthday, C") for m in sent)
    assert all(m["text"] is None for m in lines if m["status"] != "sent")

    result = runner.invoke(cli, [*base, "--days", "2"])
    assert result.exit_code == 0, result.output
    output = result.stdout
    assert "2026-03-20 10:00+03:30  thank_you  c1  +989120000001  SKIPPED: cap_priority" in output
    table = output[output.index("RULE") :].splitlines()
    assert table == [
        "RULE       SENT  DEFERRED  SKIPPED  EXPIRED  FAILED  HELD_OUT  WHY",
        "birthday      6         0        0        0       0         0",
        "thank_you     1         0        2        0       0         0  2 skipped (cap_priority)",
    ]
