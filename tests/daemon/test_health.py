"""/healthz tells the truth: a task that keeps failing, or has not succeeded for too long,
makes it 503 naming the task; its details are for the token holder only."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import OperationalError
from starlette.applications import Starlette
from starlette.testclient import TestClient

from campaigner.clock import FixedClock
from campaigner.config import ServerSettings
from campaigner.daemon.health import Health
from campaigner.daemon.http import health_routes
from campaigner.daemon.metrics import Metrics

# What a dead shop database and a refused ledger database look like in the raw.
SOURCE_ERROR = (
    "source 'shop': cannot connect to mysql+pymysql://reader@db.shop.local/wordpress: "
    "(1045, \"Access denied for user 'reader'@'10.0.0.7'\")"
)
LEDGER_ERROR = 'connection to server at "pg.internal" (10.0.0.9), port 5432 failed'


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 3, 20, 9, 0, tzinfo=UTC))


def running(clock: FixedClock, *, database_ok: bool = True) -> Health:
    def check() -> None:
        if not database_ok:
            raise OperationalError("select 1", {}, ConnectionRefusedError(LEDGER_ERROR))

    health = Health(clock=clock, check_database=check, max_failures=3)
    health.scheduler_running = True
    return health


def test_a_task_failing_n_times_in_a_row_turns_health_503_naming_it(clock: FixedClock) -> None:
    """Seen: a read-only database failed dispatch 7 times in a row while /healthz said 200."""
    health = running(clock)
    health.expect("dispatch", 120)
    health.expect("plan", 300)
    for _ in range(2):
        health.failed("dispatch", "database error: ReadOnlySqlTransaction")
    assert health.report()[0]
    health.failed("dispatch", "database error: ReadOnlySqlTransaction")
    ok, body = health.report()
    assert not ok and body["status"] == "unhealthy"
    assert body["reasons"] == ["dispatch: failed 3 times in a row"]
    health.succeeded("dispatch")
    assert health.report()[0]


def test_a_task_without_a_success_within_its_bound_turns_health_503(clock: FixedClock) -> None:
    """A planning pass that hangs, or a task that never once succeeded, fails no counter."""
    health = running(clock)
    health.expect("plan", 300)
    health.started("plan")
    clock.advance(timedelta(seconds=300))
    assert health.report()[0]
    clock.advance(timedelta(seconds=1))
    assert health.report()[1]["reasons"] == [
        "plan: no success since start for 301s (expected within 300s)"
    ]
    health.succeeded("plan")
    assert health.report()[0]
    clock.advance(timedelta(seconds=301))
    assert health.report()[1]["reasons"] == ["plan: no success for 301s (expected within 300s)"]


def test_tasks_without_a_bound_count_only_failures(clock: FixedClock) -> None:
    health = running(clock)
    health.started("reconcile")  # run --once: no schedule, so no bound
    clock.advance(timedelta(days=1))
    assert health.report()[0]


class NoMetrics(Metrics):
    def __init__(self) -> None:
        pass


def client(health: Health) -> TestClient:
    server = ServerSettings.model_validate(
        {"webhook_token": "hook-s3cret", "api_tokens": ["api-s3cret"]}
    )
    return TestClient(Starlette(routes=health_routes(health, NoMetrics(), server)))


def test_healthz_shows_details_only_to_the_token_holder(clock: FixedClock) -> None:
    """Seen: hosts, users and raw errors shown to anyone, on the public webhook port."""
    health = running(clock, database_ok=False)
    health.expect("sync:shop", 300)
    for _ in range(3):
        health.failed("sync:shop", SOURCE_ERROR)
    health.rule_errors = ["rules/thank_you.toml: delay: bad duration 'soon'"]
    http = client(health)

    for headers, url in (
        ({}, "/healthz"),
        ({"X-Campaigner-Token": "wrong"}, "/healthz"),
        ({"Authorization": "Bearer wrong"}, "/healthz"),
        ({}, "/healthz?token=hook-s3cret"),  # never in a URL, which logs keep
    ):
        response = http.get(url, headers=headers)
        assert response.status_code == 503
        assert response.json() == {
            "status": "unhealthy",
            "reasons": ["database unavailable", "sync:shop: failed 3 times in a row"],
        }
        for secret in ("db.shop.local", "reader", "10.0.0", "pg.internal", "Access denied"):
            assert secret not in response.text

    for headers in ({"X-Campaigner-Token": "hook-s3cret"}, {"Authorization": "Bearer api-s3cret"}):
        details = http.get("/healthz", headers=headers)
        assert details.status_code == 503
        body = details.json()
        assert body["tasks"]["sync:shop"]["last_error"] == SOURCE_ERROR
        assert body["tasks"]["sync:shop"]["consecutive_failures"] == 3
        assert LEDGER_ERROR in body["database"]
        assert body["rule_errors"] == health.rule_errors
        assert body["scheduler"] == "running"


def test_healthz_is_200_when_every_task_is_well(clock: FixedClock) -> None:
    health = running(clock)
    health.expect("dispatch", 120)
    health.succeeded("dispatch")
    response = client(health).get("/healthz")
    assert response.status_code == 200
    assert json.loads(response.text) == {"status": "ok", "reasons": []}
