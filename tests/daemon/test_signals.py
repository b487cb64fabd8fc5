"""`campaigner run` and its signals: SIGTERM mid-batch, SIGHUP and rule-file reloads."""

from __future__ import annotations

import json
import re
import signal
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from daemon_helpers import DaemonProcess, Shop, daemons, wait_for
from kannel_stand_in import KannelStandIn
from sqlalchemy import select

from campaigner.db.models import Message

STOP_TIMEOUT = 10
# How long a stopping process may take, start-up and exit included, on a loaded machine: a
# guard against a hang. What the daemon itself does is timed by its own log lines.
HANG = 60


def logged_at(log: str, message: str) -> datetime:
    """When the daemon logged the first line ending in `message`."""
    found = re.search(rf"^(\S+ \S+) \w+ campaigner\.daemon: {re.escape(message)}$", log, re.M)
    assert found, (message, log)
    return datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S,%f")


@pytest.fixture
def slow_kannel() -> Iterator[KannelStandIn]:
    server = KannelStandIn(delay=0.1).start()
    yield server
    server.stop()


@pytest.mark.slow
def test_sigterm_mid_batch_finishes_it_and_exits_cleanly(
    tmp_path: Path, slow_kannel: KannelStandIn
) -> None:
    shop = Shop(
        tmp_path,
        f"sqlite:///{tmp_path / 'campaigner.db'}",
        {"name": "kannel", "url": slow_kannel.url, "max_in_flight": 2},
        daemon={"stop_timeout": STOP_TIMEOUT},
    ).write()
    shop.config.write_text(
        shop.config.read_text().replace("[sending]", "[sending]\nbatch_size = 20")
    )
    shop.add_paid_orders(60)
    with daemons(shop, tmp_path) as start:
        daemon: DaemonProcess = start()
        wait_for(lambda: slow_kannel.received, "the first message to reach the gateway")
        daemon.signal(signal.SIGTERM)
        assert daemon.process.wait(HANG) == 0, daemon.log()
    log = daemon.log()
    # The batch was finished within the stop timeout, not left to its lease.
    stopping = logged_at(log, "stopped") - logged_at(log, "SIGTERM received")
    assert stopping.total_seconds() < STOP_TIMEOUT, log
    assert "leaving it to its lease" not in log

    with shop.sessions() as sessions, sessions() as session:
        rows = session.scalars(select(Message)).all()
    received = Counter(phone for phone, _text in slow_kannel.received)
    assert len(rows) == 60
    assert {m.status for m in rows} <= {"sent", "queued"}, Counter(m.status for m in rows)
    for message in rows:
        expected = 1 if message.status == "sent" else 0
        assert received[message.phone] == expected, (message.id, message.status)
    assert 0 < len(received) < 60, "the stop did not land mid-run: the test proves nothing"


@pytest.mark.slow
def test_a_request_that_outlasts_the_stop_timeout_is_left_to_its_lease(tmp_path: Path) -> None:
    """The process still exits on time; the row in flight stays `sending` (then `unknown`),
    the rest of the batch is back in the queue, and nothing is sent twice. The request never
    answers while the test runs, so no machine load can make waiting for it look like a stop
    on time."""
    server = KannelStandIn(delay=3 * HANG).start()  # answers long after any bound below
    try:
        shop = Shop(
            tmp_path,
            f"sqlite:///{tmp_path / 'campaigner.db'}",
            {"name": "kannel", "url": server.url, "max_in_flight": 1},
            daemon={"stop_timeout": 1},
        ).write()
        sending = shop.config.read_text().replace("[sending]", "[sending]\nbatch_size = 20")
        shop.config.write_text(sending)
        shop.add_paid_orders(30)
        with daemons(shop, tmp_path) as start:
            daemon = start()
            wait_for(lambda: server.queries, "the first request to reach the gateway")
            daemon.signal(signal.SIGTERM)
            # Far sooner than the request in flight would have let it.
            assert daemon.process.wait(HANG) == 0, daemon.log()
        log = daemon.log()
        assert "leaving it to its lease" in log
        stopping = logged_at(log, "stopped") - logged_at(log, "SIGTERM received")
        assert stopping.total_seconds() < 2 * HANG / 3, log
        requested = Counter("+" + query["to"] for query in server.queries)
    finally:
        server.stop()
    with shop.sessions() as sessions, sessions() as session:
        rows = session.scalars(select(Message)).all()
    assert list(requested.values()) == [1]  # one request, never answered, never repeated
    assert [m.status for m in rows].count("sending") == 1  # the one request in flight
    for message in rows:
        expected = "sending" if message.phone in requested else "queued"
        assert message.status == expected, (message.id, message.status)


BROKEN = 'delay = "soon"'


def file_shop(tmp_path: Path, **daemon: float) -> tuple[Shop, Path]:
    sent = tmp_path / "sent.jsonl"
    shop = Shop(
        tmp_path,
        f"sqlite:///{tmp_path / 'campaigner.db'}",
        {"name": "file", "path": str(sent)},
        daemon=daemon,
    ).write()
    return shop, sent


def sent_texts(sent: Path) -> list[str]:
    if not sent.exists():
        return []
    return [json.loads(line)["text"] for line in sent.read_text().splitlines()]


def break_rule(shop: Shop) -> Path:
    path = shop.rules / "thank_you.toml"
    path.write_text(path.read_text().replace('delay = "2h"', BROKEN))
    return path


def assert_rule_error_reported(shop: Shop, daemon: DaemonProcess, path: Path) -> None:
    """The error names the file and the field: in /healthz, the log and `status`."""

    def reported() -> list[str]:
        return daemon.healthz()[1]["rule_errors"]

    errors = wait_for(reported, "/healthz to report the broken rule")
    assert len(errors) == 1 and str(path) in errors[0] and "delay" in errors[0], errors
    log = daemon.log()
    assert str(path) in log and "delay" in log and "keeping its last good version" in log

    # /healthz has it in memory first; `status` reads the heartbeat row written just after,
    # which a loaded machine can delay past the moment /healthz answered.
    def status_says_it() -> str:
        status = shop.run("status")
        assert status.returncode == 0, status.stderr
        return status.stdout if "rule error" in status.stdout else ""

    shown = wait_for(status_says_it, "`status` to report the broken rule")
    assert f"pid {daemon.pid}" in shown and str(path) in shown, shown


@pytest.mark.slow
def test_a_broken_rule_file_keeps_its_last_good_version_running(tmp_path: Path) -> None:
    shop, sent = file_shop(tmp_path, watch_interval=0.2)
    shop.add_paid_orders(2)
    with daemons(shop, tmp_path) as start:
        daemon = start()
        wait_for(lambda: len(sent_texts(sent)) == 2, "the first two thank-yous")

        path = break_rule(shop)
        assert_rule_error_reported(shop, daemon, path)
        shop.add_paid_orders(1)  # newly due for the rule whose file is now broken
        wait_for(lambda: len(sent_texts(sent)) == 3, "the old version to plan the new order")
        assert sent_texts(sent)[-1] == "Thanks Sara3 for order o3"

        path.write_text(path.read_text().replace(BROKEN, 'delay = "2h"'))
        wait_for(lambda: not daemon.healthz()[1]["rule_errors"], "the fixed rule to load")
        assert daemon.stop() == 0
    status = shop.run("status")
    assert "No daemon running" in status.stdout, status.stdout


@pytest.mark.slow
def test_sighup_reloads_rules_and_templates(tmp_path: Path) -> None:
    shop, sent = file_shop(tmp_path, watch_interval=3600)  # only SIGHUP reloads here
    template = tmp_path / "templates" / "messages" / "thank_you.j2"
    shop.add_paid_orders(1)
    with daemons(shop, tmp_path) as start:
        daemon = start()
        wait_for(lambda: sent_texts(sent) == ["Thanks Sara1 for order o1"], "the first message")

        path = break_rule(shop)
        template.write_text("Merci {{ first_name }}")
        daemon.signal(signal.SIGHUP)
        assert_rule_error_reported(shop, daemon, path)
        shop.add_paid_orders(1)
        wait_for(lambda: len(sent_texts(sent)) == 2, "the old rule to plan the new order")
        assert sent_texts(sent)[-1] == "Merci Sara2", "the template was not reloaded"
        assert daemon.process.poll() is None
        assert daemon.stop() == 0
