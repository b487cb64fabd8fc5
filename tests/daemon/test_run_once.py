"""`campaigner run --once` in its own process, as cron would run it."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from daemon_helpers import Shop, daemons, free_port
from kannel_stand_in import KannelStandIn
from sqlalchemy import select

from campaigner.db.models import Message


def sqlite_shop(tmp_path: Path, gateway: dict[str, object]) -> Shop:
    return Shop(tmp_path, f"sqlite:///{tmp_path / 'campaigner.db'}", gateway).write()


@pytest.mark.slow
def test_run_once_sends_each_due_message_once(tmp_path: Path) -> None:
    sent = tmp_path / "sent.jsonl"
    shop = sqlite_shop(tmp_path, {"name": "file", "path": str(sent)})
    shop.add_paid_orders(5)
    shop.add_paid_orders(2, paid_ago=timedelta(hours=1))  # not due for another hour

    first = shop.run("run", "--once")
    assert first.returncode == 0, first.stderr
    lines = [json.loads(line) for line in sent.read_text().splitlines()]
    assert sorted((m["phone"], m["text"]) for m in lines) == [
        (f"+98912{n:07d}", f"Thanks Sara{n} for order o{n}") for n in range(1, 6)
    ]
    with shop.sessions() as sessions, sessions() as session:
        rows = session.scalars(select(Message)).all()
    assert {(m.rule, m.status) for m in rows} == {("thank_you", "sent")}
    assert sorted(m.id for m in rows) == sorted(m["id"] for m in lines)
    assert "planned 5, sent 5" in first.stderr

    second = shop.run("run", "--once")
    assert second.returncode == 0, second.stderr
    assert "planned 0, sent 0" in second.stderr
    assert len(sent.read_text().splitlines()) == 5, "the second pass sent something again"


@pytest.mark.slow
def test_run_once_exits_non_zero_when_the_gateway_is_down(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    shop = sqlite_shop(tmp_path, {"name": "kannel", "url": closed, "timeout_seconds": 2})
    shop.add_paid_orders(3)

    result = shop.run("run", "--once")

    assert result.returncode == 1, result.stderr
    assert "retried 3" in result.stderr
    assert "gateway kannel failed" in result.stderr and "Connection refused" in result.stderr
    with shop.sessions() as sessions, sessions() as session:
        statuses = session.scalars(select(Message.status)).all()
    assert statuses == ["queued"] * 3, "a message was lost while the gateway was down"


@pytest.mark.slow
def test_a_second_daemon_on_the_same_sqlite_database_refuses_to_start(tmp_path: Path) -> None:
    shop = sqlite_shop(tmp_path, {"name": "file", "path": str(tmp_path / "sent.jsonl")})
    with daemons(shop, tmp_path) as start:
        first = start()
        first.wait_healthy()
        second = shop.run("run", timeout=30)
        assert second.returncode == 1
        assert "already using this SQLite database" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.process.poll() is None, "the first daemon was disturbed"
        assert first.stop() == 0


KANNEL_PASSWORD = "KnPw/SECRET&1 x"
WEBHOOK_TOKEN = "Wh/Tok+SECRET=2"


@pytest.mark.slow
def test_secrets_stay_out_of_logs_ledger_history_and_output_even_when_echoed(
    tmp_path: Path,
) -> None:
    """Issue 13: `-v run --once` logged these secrets percent-encoded in httpx request lines,
    and a gateway echoing the request put them into last_error, history, the JSON log and
    the run output."""
    kannel = KannelStandIn(echoes=[502]).start()
    try:
        shop = sqlite_shop(
            tmp_path,
            {"name": "kannel", "url": kannel.url, "username": "campaigner", "max_in_flight": 1},
        )
        shop.add_paid_orders(2)
        secrets = {
            "CAMPAIGNER_GATEWAY__PASSWORD": KANNEL_PASSWORD,
            "CAMPAIGNER_SERVER__WEBHOOK_TOKEN": WEBHOOK_TOKEN,
        }
        result = shop.run("-v", "run", "--once", "--log-format", "json", **secrets)
        history = shop.run("history", "--phone", "+989120000001", **secrets)
        history_2 = shop.run("history", "--phone", "+989120000002", **secrets)
    finally:
        kannel.stop()

    assert result.returncode == 1, result.stderr
    logged = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any(entry["message"].startswith("HTTP Request: GET") for entry in logged)
    assert "gateway kannel failed: GatewayError: kannel: HTTP 502: 'Cannot serve GET /cgi-bin/" in (
        result.stderr
    )
    with shop.sessions() as sessions, sessions() as session:
        rows = session.scalars(select(Message)).all()
    # The refused one waits for its retry, the other went out: nothing lost.
    assert sorted(m.status for m in rows) == ["queued", "sent"]
    errors = [m.last_error for m in rows if m.last_error]
    assert any("HTTP 502: 'Cannot serve GET /cgi-bin/sendsms?" in e for e in errors), errors
    assert "HTTP 502: 'Cannot serve GET" in history.stdout + history_2.stdout
    everything = "\n".join(
        [result.stdout, result.stderr, history.stdout, history_2.stdout, *errors]
    )
    for leak in ("SECRET", "KnPw", "Wh%2FTok", "Wh/Tok"):
        assert leak not in everything
