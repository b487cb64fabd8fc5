from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from secret_forms import USERNAME, echo_of, encodings, storable_secrets
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from campaigner.cli import cli
from campaigner.db.models import Customer, Message, OptOut, SyncState
from campaigner.masking import registry

WHEN = datetime(2026, 3, 22, 6, 30, tzinfo=UTC)


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    return path


def run(config: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def ledger(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        customer = Customer(external_id="C-1", first_name="Sara", phone="+989121234567")
        session.add(customer)
        session.flush()
        for key, status, reason in (
            ("1", "sent", None),
            ("2", "skipped", "cap"),
            ("3", "unknown", None),
        ):
            session.add(
                Message(
                    rule="thank_you",
                    customer_id=customer.id,
                    occurrence_key=key,
                    status=status,
                    reason=reason,
                    phone=customer.phone,
                    due_at=WHEN,
                    scheduled_for=WHEN,
                    gateway="kavenegar",
                    text="سلام سارا" if key == "1" else None,
                )
            )


@pytest.mark.usefixtures("ledger")
def test_status_shows_depth_by_status_and_rule_and_unknown_rows(config: Path) -> None:
    output = run(config, "status")
    assert "skipped" in output and "thank_you" in output
    assert "Nothing queued." in output
    assert "Unknown" in output and "+989121234567 via kavenegar" in output


def test_status_hides_daemons_gone_longer_than_gone_after(
    config: Path, sessions: sessionmaker[Session]
) -> None:
    """Seen: killed daemons stayed in `status` as "not responding" forever."""
    now = datetime.now(UTC)  # `status` reads the system clock
    with sessions.begin() as session:
        for pid, age in ((101, 5), (102, 120), (103, 301), (104, 86_400)):
            tick = now - timedelta(seconds=age)
            beat = {"host": "web1", "pid": pid, "last_tick": tick.isoformat(), "circuit": {}}
            session.add(
                SyncState(
                    name=f"daemon:web1:{pid}",
                    cursor=beat | {"started_at": tick.isoformat(), "rule_errors": []},
                    updated_at=tick,
                )
            )
    config.write_text(config.read_text() + "[daemon]\ngone_after = 300\n", encoding="utf-8")
    output = run(config, "status")
    assert "pid 101" in output and "pid 102" in output
    assert "pid 102: " in output and output.count("not responding") == 1
    assert "pid 103" not in output and "pid 104" not in output
    assert "(2 daemons not heard from for more than 300s not shown" in output


@pytest.mark.usefixtures("ledger")
def test_history_by_phone_and_customer(config: Path) -> None:
    by_phone = run(config, "history", "--phone", "۰۹۱۲۱۲۳۴۵۶۷")
    assert by_phone.count("thank_you") == 3
    assert "skipped (cap)" in by_phone and "سلام سارا" in by_phone
    assert run(config, "history", "--customer", "C-1") == by_phone
    missing = CliRunner().invoke(cli, ["--config", str(config), "history", "--customer", "nope"])
    assert missing.exit_code == 1 and "no customer" in missing.output


@pytest.mark.usefixtures("ledger")
@given(secret=storable_secrets)
@hypothesis_settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_history_masks_any_secret_in_every_encoding(
    secret: str, config: Path, sessions: sessionmaker[Session]
) -> None:
    """Rows stored before masking existed: `history` masks what it prints."""
    with sessions.begin() as session:  # plain SQL, as a daemon before the fix stored it
        session.execute(text("UPDATE messages SET last_error = :error"), {"error": echo_of(secret)})
    saved = registry.snapshot()
    try:
        result = CliRunner().invoke(
            cli,
            ["--config", str(config), "history", "--phone", "+989121234567"],
            env={"CAMPAIGNER_GATEWAY__USERNAME": USERNAME, "CAMPAIGNER_GATEWAY__PASSWORD": secret},
        )
    finally:
        registry.restore(saved)
    assert result.exit_code == 0, result.output
    assert result.output.count("error: GET /cgi-bin/sendsms?password=") == 3
    for name, form in encodings(secret).items():
        assert form not in result.output, name


def test_optout_add_list_remove_import(
    config: Path, tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    assert "1 added" in run(config, "optout", "add", "09121234567", "--reason", "phoned")
    assert "0 added, 1 already" in run(config, "optout", "add", "+989121234567")
    listing = run(config, "optout", "list")
    assert "+989121234567" in listing and "manual phoned" in listing
    assert "removed" in run(config, "optout", "remove", "0912 123 4567")
    csv = tmp_path / "stop.csv"
    csv.write_text("phone,name\n09121111111,a\n+989122222222,b\nnot-a-number 12,c\n", "utf-8")
    result = CliRunner().invoke(cli, ["--config", str(config), "optout", "import", str(csv)])
    assert result.exit_code == 0
    assert "2 added" in result.output and "skipped invalid number: not-a-number 12" in result.output
    with sessions() as session:
        phones = set(session.scalars(select(OptOut.phone)))
    assert phones == {"+989121111111", "+989122222222"}


def test_optout_import_names_the_lines_it_skips(
    config: Path, tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    # A line without digits used to vanish without a word: only a first line may be a header.
    numbers = tmp_path / "stop.txt"
    numbers.write_text("mobile\n09121111111\n[/bold]\n\n+989122222222\nSTOP\n", "utf-8")
    result = CliRunner().invoke(cli, ["--config", str(config), "optout", "import", str(numbers)])
    assert result.exit_code == 0, result.output
    assert "2 added, 0 already on the list, 2 line(s) without a number" in result.output
    assert "skipped line 3: no phone number: '[/bold]'" in result.output
    assert "skipped line 6: no phone number: 'STOP'" in result.output
    assert "line 1" not in result.output and "line 4" not in result.output


@pytest.mark.parametrize(
    "content",
    [b"", b"\xef\xbb\xbf", b"\r\n\r\n  \r\n", b"\xff\xfe"],
    ids=["zero-bytes", "excel-empty-sheet", "blank-lines", "unicode-text-empty-sheet"],
)
def test_optout_import_of_an_empty_file_says_so_and_fails_as_customers_import_does(
    config: Path, tmp_path: Path, content: bytes
) -> None:
    """Regression: it printed "0 added, 0 already on the list" and exited 0, as if the file
    had been read and every number was known; an empty export is a mistake to be told of."""
    path = tmp_path / "unsubscribed.csv"
    path.write_bytes(content)
    result = CliRunner().invoke(cli, ["--config", str(config), "optout", "import", str(path)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: {path}: the file is empty; expected a phone number per line, or a CSV with "
        "the numbers in its first column"
    ]


def test_optout_import_of_excel_unicode_text_adds_its_numbers(
    config: Path, tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    """Regression: a UTF-16 file (Excel's "Unicode Text") was read as Windows-1256, its byte
    order mark taken for Persian letters: "0 added", exit 0, every number skipped with NULs
    in it, and the people on the list kept being messaged."""
    path = tmp_path / "unsubscribed.txt"
    path.write_bytes("موبایل\tنام\r\n09121111111\tعلی\r\n۰۹۱۲۲۲۲۲۲۲۲\tمریم\r\n".encode("utf-16"))
    result = CliRunner().invoke(cli, ["--config", str(config), "optout", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["2 added, 0 already on the list"]
    with sessions() as session:
        phones = set(session.scalars(select(OptOut.phone)))
    assert phones == {"+989121111111", "+989122222222"}


def test_optout_import_of_a_header_alone_says_there_were_no_numbers(
    config: Path, tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    """Regression: "0 added, 0 already on the list" did not say the file held no number.
    A header alone is an export of nobody, as a customers file of a header alone is 0 rows:
    said, and not a failure."""
    path = tmp_path / "unsubscribed.csv"
    path.write_text("Mobile,Name\n\n", "utf-8")
    result = CliRunner().invoke(cli, ["--config", str(config), "optout", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"{path}: only a header line, no numbers: nothing added"]
    with sessions() as session:
        assert session.scalars(select(OptOut.phone)).all() == []
