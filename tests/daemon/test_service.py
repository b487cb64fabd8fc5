import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from campaigner.clock import FixedClock
from campaigner.daemon.health import Health
from campaigner.daemon.lock import InstanceLock
from campaigner.daemon.service import Daemon, Task, backoff, run_once
from campaigner.errors import CampaignerError

WAIT = 10  # seconds; generous upper bounds for thread hand-offs, never a timing assertion


def make_health(database_ok: bool = True) -> Health:
    def check() -> None:
        if not database_ok:
            raise OperationalError("select 1", {}, ConnectionRefusedError("refused"))

    return Health(clock=FixedClock(datetime(2026, 1, 1, tzinfo=UTC)), check_database=check)


def test_database_error_is_survived_and_reported() -> None:
    calls = []
    recovered = threading.Event()

    def flaky() -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("select 1", {}, ConnectionRefusedError("server closed"))
        recovered.set()
        return False

    health = make_health()
    daemon = Daemon([Task("plan", 0.05, flaky)], health=health, stop_timeout=5)
    daemon.start()
    try:
        assert recovered.wait(WAIT), "the task was not retried after a database error"
    finally:
        daemon.stop()
    state = health.tasks["plan"]
    assert state.consecutive_failures == 0 and state.last_error is None
    assert len(calls) >= 2


def test_the_delay_a_backoff_line_states_is_the_delay_applied(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Seen: "retrying in 60s" in the log, and a retry every second (the task's interval).

    The interval here is far shorter than the first back-off, so a retry on the interval
    instead of the stated delay shows; a slow machine can only lengthen the gap."""
    attempts: list[float] = []
    second = threading.Event()

    def broken() -> bool:
        attempts.append(time.monotonic())
        if len(attempts) == 2:
            second.set()
        raise OperationalError("UPDATE messages", {}, PermissionError("read-only"))

    daemon = Daemon([Task("dispatch", 0.05, broken)], health=make_health(), stop_timeout=5)
    caplog.set_level(logging.ERROR, logger="campaigner.daemon")
    daemon.start()
    try:
        assert second.wait(WAIT), "the task was not retried"
    finally:
        daemon.stop()
    stated = caplog.records[0].getMessage()
    assert stated.endswith(f"; retrying in {backoff(1):.0f}s"), stated
    assert attempts[1] - attempts[0] >= backoff(1) - 0.05
    assert backoff(1) == 2 and backoff(6) == backoff(60) == 60


def test_planning_that_queued_work_wakes_the_dispatcher() -> None:
    dispatched = []
    second_dispatch = threading.Event()

    def dispatch() -> bool:
        dispatched.append(1)
        if len(dispatched) >= 2:
            second_dispatch.set()
        return False

    planned = threading.Event()

    def plan() -> bool:
        if planned.is_set():
            return False
        planned.set()
        return True

    daemon = Daemon(
        [Task("plan", 3600, plan, wakes="dispatch"), Task("dispatch", 3600, dispatch)],
        health=make_health(),
        stop_timeout=5,
    )
    daemon.start()
    try:
        assert second_dispatch.wait(WAIT), "dispatch did not run right after planning"
    finally:
        daemon.stop()
    assert daemon.health.scheduler_running is False


def test_stop_waits_for_the_batch_in_flight_then_calls_on_stop() -> None:
    started, release = threading.Event(), threading.Event()
    finished, order = threading.Event(), []

    def slow() -> bool:
        started.set()
        release.wait(WAIT)
        order.append("batch finished")
        finished.set()
        return False

    daemon = Daemon(
        [Task("dispatch", 3600, slow)],
        health=make_health(),
        on_stop=lambda: order.append("claims released"),
        stop_timeout=WAIT,
    )
    daemon.start()
    assert started.wait(WAIT)
    stopper = threading.Thread(target=daemon.stop)
    stopper.start()
    release.set()
    stopper.join(WAIT)
    assert order == ["batch finished", "claims released"]


def test_run_once_collects_errors() -> None:
    def boom() -> bool:
        raise RuntimeError("gateway exploded")

    health = make_health()
    errors = run_once([Task("plan", 1, lambda: True), Task("dispatch", 1, boom)], health)
    assert errors == {"dispatch": "RuntimeError: gateway exploded"}
    assert health.tasks["plan"].last_succeeded is not None


def test_second_instance_on_the_same_sqlite_database_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'campaigner.db'}"
    first = InstanceLock.for_database(url)
    second = InstanceLock.for_database(url)
    assert first is not None and second is not None
    with first, pytest.raises(CampaignerError, match="already using this SQLite database"):
        second.acquire()
    second.acquire()  # free again once the first one stopped
    second.release()
    assert InstanceLock.for_database("postgresql+psycopg://h/db") is None
