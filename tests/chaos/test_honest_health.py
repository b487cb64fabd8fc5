"""Chaos against a real `campaigner run`: /healthz must tell the truth.

Each test breaks one thing the daemon depends on while it runs, and checks that /healthz
turns 503 naming the task within the bound the configuration promises (N failures in a row
with the stated back-off), that the answer to a caller without the token holds no host, user
or error text, and that it turns 200 again once the fault is gone, with the work done.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    alter_pg_database,
    create_mariadb_database,
    create_pg_database,
    drop_mariadb_database,
    drop_pg_database,
    require_mariadb,
    require_postgres,
)
from daemon_helpers import DaemonProcess, Shop, daemons, wait_for
from sqlalchemy import create_engine, func, select, text

from campaigner.daemon.service import backoff
from campaigner.db.models import Customer

FAILURES = 3  # daemon.unhealthy_after_failures
INTERVAL = 1.0  # every task's interval in these shops
SLACK = 60.0  # process start-up, polling and a busy machine: a guard against a hang
HEALTH = {"unhealthy_after_failures": FAILURES, "unhealthy_after_intervals": 5}
# The longest the Nth failure in a row can take to happen after the fault: the next run,
# then each back-off the log announces.
BOUND = INTERVAL + sum(backoff(n) for n in range(1, FAILURES))


def sent_lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def wait_unhealthy(daemon: DaemonProcess, task: str, since: float) -> dict[str, Any]:
    """The bare /healthz body once it is 503 naming `task`; fails after BOUND + SLACK.

    The bound the configuration promises is counted in failures, not seconds (a loaded
    machine stretches every one): 503 by the FAILURES-th failure in a row, not later."""

    def naming() -> dict[str, Any] | None:
        status, body = daemon.healthz(details=False)
        named = any(reason.startswith(f"{task}: ") for reason in body["reasons"])
        return body if status == 503 and named else None

    body = wait_for(naming, f"/healthz to turn 503 naming {task}", deadline=BOUND + SLACK)
    assert time.monotonic() - since <= BOUND + SLACK
    failures = daemon.healthz()[1]["tasks"][task]["consecutive_failures"]
    assert failures <= FAILURES, (failures, body)
    return body


def assert_bare(body: dict[str, Any], *secrets: str) -> None:
    """A caller without the token learns the status and the task, nothing else."""
    assert set(body) == {"status", "reasons"} and body["status"] == "unhealthy", body
    text = repr(body)
    for secret in secrets:
        assert secret not in text, (secret, body)


def url_parts(url: str) -> list[str]:
    """Host, port, user and database name of a URL: none may reach a public body."""
    match = re.match(r"^[^:]+://([^@:/]+)@([^:/]+):(\d+)/([^?]+)", url)
    assert match, url
    return list(match.groups())


# -- a read-only ledger database ----------------------------------------------------------


@pytest.fixture
def pg_ledger() -> Iterator[str]:
    require_postgres()
    url = create_pg_database()
    yield url
    set_read_only(url, False)
    drop_pg_database(url)


def set_read_only(url: str, read_only: bool) -> None:
    """What a replica taken for the primary, or a revoked grant, looks like to the daemon:
    `select 1` answers, every write is refused."""
    alter_pg_database(url, "SET default_transaction_read_only = on" if read_only else "RESET ALL")


def retry_lines(log: str, task: str) -> list[tuple[datetime, float]]:
    """(when, stated delay) of each back-off line the daemon logged for `task`."""
    pattern = re.compile(
        rf"^(\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d,\d{{3}}) ERROR campaigner\.daemon: {task}: "
        r".*; retrying in (\d+)s$",
        re.MULTILINE,
    )
    return [
        (datetime.strptime(when, "%Y-%m-%d %H:%M:%S,%f"), float(delay))
        for when, delay in pattern.findall(log)
    ]


@pytest.mark.slow
def test_a_read_only_database_turns_healthz_503_naming_dispatch(
    tmp_path: Path, pg_ledger: str
) -> None:
    """Seen: 200 while dispatch failed 7 times in a row; "retrying in 60s" every second."""
    sent = tmp_path / "sent.jsonl"
    shop = Shop(tmp_path, pg_ledger, {"name": "file", "path": str(sent)}, daemon=HEALTH).write()
    shop.add_paid_orders(2)
    with daemons(shop, tmp_path) as start:
        daemon = start()
        daemon.wait_healthy()
        wait_for(lambda: sent_lines(sent) == 2, "the first two messages")

        set_read_only(pg_ledger, True)
        body = wait_unhealthy(daemon, "dispatch", since=time.monotonic())
        assert_bare(body, *url_parts(pg_ledger), "read-only", "ReadOnly")
        details = daemon.healthz()[1]
        assert "read-only transaction" in details["tasks"]["dispatch"]["last_error"]
        assert details["database"] == "ok"  # `select 1` still answers: not enough

        # The back-off the log states is the one kept (give the log two more retries).
        wait_for(lambda: len(retry_lines(daemon.log(), "dispatch")) >= 3, "three retries")
        retries = retry_lines(daemon.log(), "dispatch")
        for (when, delay), (after, _) in pairwise(retries):
            assert (after - when).total_seconds() >= delay - 0.5, retries

        set_read_only(pg_ledger, False)
        daemon.wait_healthy()
        shop.add_paid_orders(1)
        wait_for(lambda: sent_lines(sent) == 3, "the message due after the recovery")
        assert daemon.stop() == 0


# -- every planning pass failing ----------------------------------------------------------

REFUSE_PLANS = (
    "CREATE TRIGGER chaos_refuse_plans BEFORE INSERT ON messages "
    "BEGIN SELECT RAISE(ABORT, 'chaos: no new ledger rows'); END"
)


@pytest.mark.slow
def test_every_planning_pass_failing_turns_healthz_503_naming_plan(tmp_path: Path) -> None:
    """Seen: 200 while every planning pass failed (dispatch, with nothing to send, was fine).

    The database refuses the only rule's rows: the rule is set aside (`plan_failures`), and
    a pass in which every rule failed planned nothing, so the planning task fails."""
    sent = tmp_path / "sent.jsonl"
    database = tmp_path / "campaigner.db"
    shop = Shop(
        tmp_path, f"sqlite:///{database}", {"name": "file", "path": str(sent)}, daemon=HEALTH
    ).write()
    with daemons(shop, tmp_path) as start:
        daemon = start()
        daemon.wait_healthy()
        with shop.sessions() as sessions, sessions.begin() as session:
            session.execute(text(REFUSE_PLANS))
        shop.add_paid_orders(2)  # due now: every pass tries to plan them, and fails
        body = wait_unhealthy(daemon, "plan", since=time.monotonic())
        assert_bare(body, str(tmp_path), "chaos", "IntegrityError", "messages", "thank_you")
        details = daemon.healthz()[1]
        assert "every rule failed to plan" in details["tasks"]["plan"]["last_error"]
        assert "chaos: no new ledger rows" in details["plan_failures"]["thank_you"]["error"]
        assert sent_lines(sent) == 0

        with shop.sessions() as sessions, sessions.begin() as session:
            session.execute(text("DROP TRIGGER chaos_refuse_plans"))
        # The rule itself waits out its first set-aside minute before it is tried again.
        wait_for(lambda: daemon.healthz()[0] == 200, "/healthz to recover", deadline=120)
        wait_for(lambda: sent_lines(sent) == 2, "the two thank-yous planned after the fix")
        assert daemon.stop() == 0


# -- every source sync failing ------------------------------------------------------------

SHOP_TABLE = (
    "CREATE TABLE shop_customers (id INTEGER PRIMARY KEY, first_name VARCHAR(50), "
    "phone VARCHAR(20), consent VARCHAR(3))"
)


def fill_shop(url: str, *ids: int) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(SHOP_TABLE))
        for n in ids:
            connection.execute(
                text("INSERT INTO shop_customers VALUES (:id, :name, :phone, 'yes')"),
                {"id": n, "name": f"Sara{n}", "phone": f"0912{n:07d}"},
            )
    engine.dispose()


# Each backend: how to require it, create a database (by name, to bring a dropped one back)
# and drop it (the shop's database dies).
BACKENDS: dict[str, tuple[Callable[[], None], Callable[..., str], Callable[[str], None]]] = {
    "postgresql": (require_postgres, create_pg_database, drop_pg_database),
    "mariadb": (require_mariadb, create_mariadb_database, drop_mariadb_database),
}


@dataclass
class ShopDatabase:
    url: str
    kill: Callable[[], None]
    revive: Callable[[], None]


@pytest.fixture(params=sorted(BACKENDS))
def shop_database(request: pytest.FixtureRequest) -> Iterator[ShopDatabase]:
    require, create, drop = BACKENDS[request.param]
    require()
    url = create()
    name = url.rsplit("/", 1)[1].split("?")[0]
    yield ShopDatabase(url, kill=lambda: drop(url), revive=lambda: create(name) and None)
    drop(url)


@pytest.mark.slow
def test_every_sync_failing_turns_healthz_503_naming_the_source(
    tmp_path: Path, shop_database: ShopDatabase
) -> None:
    """Seen: 200 while every sync of a dead shop database failed."""
    url = shop_database.url
    fill_shop(url, 1)
    shop = Shop(
        tmp_path,
        f"sqlite:///{tmp_path / 'campaigner.db'}",
        {"name": "file", "path": str(tmp_path / "sent.jsonl")},
        daemon=HEALTH,
    ).write()
    shop.config.write_text(
        shop.config.read_text()
        + "[[sources]]\n"
        + 'name = "shop"\n'
        + f'url = "{url}"\n'
        + f"interval = {INTERVAL}\n"
        + "[sources.customers]\n"
        + 'table = "shop_customers"\n'
        + 'columns = { id = "id", consent = "consent" }\n'
    )

    def customers() -> int:
        with shop.sessions() as sessions, sessions() as session:
            return int(session.scalar(select(func.count()).select_from(Customer)) or 0)

    with daemons(shop, tmp_path) as start:
        daemon = start()
        daemon.wait_healthy()
        wait_for(lambda: customers() == 1, "the first sync")

        shop_database.kill()
        body = wait_unhealthy(daemon, "sync:shop", since=time.monotonic())
        assert_bare(body, *url_parts(url), "cannot connect", "Unknown database", "exist")
        assert "cannot connect" in daemon.healthz()[1]["tasks"]["sync:shop"]["last_error"]

        shop_database.revive()
        fill_shop(url, 1, 2)
        daemon.wait_healthy()
        wait_for(lambda: customers() == 2, "the customer added while the shop was down")
        assert daemon.stop() == 0


# -- a killed daemon ----------------------------------------------------------------------


@pytest.mark.slow
def test_a_killed_daemon_is_counted_as_gone_not_listed_forever(tmp_path: Path) -> None:
    """Seen: killed daemons stayed in `status` as "not responding" forever."""
    shop = Shop(
        tmp_path,
        f"sqlite:///{tmp_path / 'campaigner.db'}",
        {"name": "file", "path": str(tmp_path / "sent.jsonl")},
    ).write()
    with daemons(shop, tmp_path) as start:
        daemon = start()
        daemon.wait_healthy()
        wait_for(lambda: f"pid {daemon.pid}" in shop.run("status").stdout, "its heartbeat")
        daemon.signal(signal.SIGKILL)
        daemon.process.wait(10)

    def gone() -> str | None:
        result = shop.run("status", CAMPAIGNER_DAEMON__GONE_AFTER="3")
        assert result.returncode == 0, result.stderr
        return result.stdout if "not shown" in result.stdout else None

    output = wait_for(gone, "`status` to count the killed daemon as gone")
    assert f"pid {daemon.pid}" not in output
    assert "No daemon running" in output
    assert "(1 daemon not heard from for more than 3s not shown" in output
