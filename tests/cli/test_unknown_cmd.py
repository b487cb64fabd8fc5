from __future__ import annotations

import getpass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.orm import Session, sessionmaker

from campaigner.cli import cli
from campaigner.db.models import Customer, Message

HOURS_AGO = datetime.now(UTC) - timedelta(hours=3)


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[database]\nurl = "{db_url}"\n'
        '[gateway]\nname = "kannel"\nfallback = "backup"\n'
        '[gateways.backup]\nname = "kavenegar"\n',
        encoding="utf-8",
    )
    return path


def invoke(config: Path, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], input=stdin)


@pytest.fixture
def ledger(sessions: sessionmaker[Session]) -> dict[str, int]:
    """Two unknown thank-yous (via Kannel, via the Kavenegar fallback), a recent unknown
    birthday, and a sent message."""
    ids = {}
    with sessions.begin() as session:
        customer = Customer(external_id="C-7", first_name="سارا", phone="+989121234567")
        session.add(customer)
        session.flush()
        for key, rule, status, gateway, since in (
            ("kannel", "thank_you", "unknown", "kannel", HOURS_AGO),
            ("backup", "thank_you", "unknown", "backup", HOURS_AGO),
            ("recent", "birthday", "unknown", "kannel", datetime.now(UTC)),
            ("done", "thank_you", "sent", "kannel", HOURS_AGO),
        ):
            message = Message(
                rule=rule,
                customer_id=customer.id,
                occurrence_key=key,
                status=status,
                reason="lease_expired" if status == "unknown" else None,
                phone=customer.phone,
                due_at=HOURS_AGO,
                scheduled_for=HOURS_AGO,
                gateway=gateway,
                updated_at=since,
            )
            session.add(message)
            session.flush()
            ids[key] = message.id
    return ids


def test_list_shows_each_unknown_message_and_how_it_can_be_settled(
    config: Path, ledger: dict[str, int]
) -> None:
    result = invoke(config, "unknown", "list")
    assert result.exit_code == 0, result.output
    assert f"#{ledger['kannel']} thank_you to +989121234567 via kannel" in result.output
    assert f"#{ledger['done']} " not in result.output
    assert "via kannel: no status lookup" in result.output
    assert "via backup: the daemon asks the gateway" in result.output
    assert "3 unknown." in result.output
    recent = invoke(config, "unknown", "list", "--rule", "thank_you", "--older-than", "1h")
    assert "2 unknown." in recent.output and "birthday" not in recent.output


def test_resolve_by_id_records_who_and_history_shows_it(
    config: Path, ledger: dict[str, int], sessions: sessionmaker[Session]
) -> None:
    result = invoke(config, "unknown", "resolve", str(ledger["kannel"]), "--sent")
    assert result.exit_code == 0, result.output
    assert "1 recorded as sent." in result.output
    with sessions() as session:
        message = session.get_one(Message, ledger["kannel"])
        assert (message.status, message.resolved_by) == ("sent", getpass.getuser())
    history = invoke(config, "history", "--customer", "C-7")
    assert f"settled by hand by {getpass.getuser()} at" in history.output


def test_resolve_a_selection_asks_first_and_settles_exactly_what_was_confirmed(
    config: Path, ledger: dict[str, int], sessions: sessionmaker[Session]
) -> None:
    args = ["unknown", "resolve", "--rule", "thank_you", "--older-than", "2h", "--requeue"]
    refused = invoke(config, *args, stdin="n\n")
    assert refused.exit_code == 1 and "Queue 2 unknown messages again" in refused.output
    with sessions() as session:
        assert session.get_one(Message, ledger["backup"]).status == "unknown"
    accepted = invoke(config, *args, "--by", "ops-alice", stdin="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert "2 queued again." in accepted.output
    with sessions() as session:
        for key in ("kannel", "backup"):
            message = session.get_one(Message, ledger[key])
            assert (message.status, message.reason, message.resolved_by) == (
                "queued",
                "requeued",
                "ops-alice",
            )
        assert session.get_one(Message, ledger["recent"]).status == "unknown"


def test_resolve_names_what_it_left_alone_and_refuses_unclear_requests(
    config: Path, ledger: dict[str, int]
) -> None:
    mixed = invoke(config, "unknown", "resolve", str(ledger["recent"]), str(ledger["done"]))
    assert mixed.exit_code == 1 and "--sent, --not-sent or --requeue" in mixed.output
    result = invoke(
        config, "unknown", "resolve", str(ledger["recent"]), str(ledger["done"]), "--not-sent"
    )
    assert result.exit_code == 1
    assert "1 recorded as not sent." in result.output
    assert f"#{ledger['done']}: left alone, it is sent, not unknown" in result.output
    both = invoke(config, "unknown", "resolve", "5", "--rule", "thank_you", "--sent")
    assert both.exit_code == 1 and "not both" in both.output
    bad_age = invoke(config, "unknown", "resolve", "--older-than", "soon", "--sent")
    assert bad_age.exit_code == 2 and "bad duration 'soon'" in bad_age.output
    none = invoke(config, "unknown", "resolve", "--rule", "nps", "--sent")
    assert none.exit_code == 0 and "No unknown messages match." in none.output


def test_list_shows_a_gateways_error_drawn_and_masked(
    config: Path, ledger: dict[str, int], sessions: sessionmaker[Session]
) -> None:
    """Regression: the error a stranger's server answered was printed raw: its escape
    sequences drove the terminal, and a secret it echoed (stored before masking existed, or
    registered since) was shown."""
    with sessions.begin() as session:
        message = session.get_one(Message, ledger["kannel"])
        message.last_error = (
            "HTTP 502: \x1b]0;owned\x07 [bold]x[/] \u202eevil pass=Kn-Secret-9\nmore"
        )
    result = CliRunner().invoke(
        cli,
        ["--config", str(config), "unknown", "list"],
        env={"CAMPAIGNER_GATEWAY__PASSWORD": "Kn-Secret-9"},
    )
    assert result.exit_code == 0, result.output
    [error] = [line for line in result.output.splitlines() if "error:" in line]
    assert error == ("    error: HTTP 502: ␛]0;owned␇ [bold]x[/] \\u202eevil pass=******** ⏎ more")
