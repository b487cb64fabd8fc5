"""What /healthz reports: is the scheduler running, does the database answer, and is every
task still doing its job. Shared by the task threads and the HTTP thread, hence the lock.

A daemon whose database answers `select 1` may still get nothing done (a read-only
database, a planning query that fails every pass, a shop database that went away), so each
task counts as unhealthy once it has failed `max_failures` times in a row, or has gone longer
than its own bound without a success.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from campaigner.clock import Clock
from campaigner.errors import one_line
from campaigner.masking import mask

DEFAULT_MAX_FAILURES = 3


@dataclass
class TaskState:
    must_succeed_within: float | None = None  # seconds; None: no bound (run --once)
    last_started: datetime | None = None
    last_succeeded: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0


@dataclass
class Health:
    clock: Clock
    check_database: Callable[[], None]
    max_failures: int = DEFAULT_MAX_FAILURES
    scheduler_running: bool = False
    started_at: datetime | None = None
    tasks: dict[str, TaskState] = field(default_factory=dict)
    rule_errors: list[str] = field(default_factory=list)
    # Rules that fail at plan time, by name: error, since, failures, retry_at.
    plan_failures: dict[str, dict[str, Any]] = field(default_factory=dict)
    circuit: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def expect(self, task: str, must_succeed_within: float) -> None:
        """`task` runs from now on and must succeed at least every `must_succeed_within` s."""
        with self._lock:
            if self.started_at is None:
                self.started_at = self.clock.now()
            self.tasks.setdefault(task, TaskState()).must_succeed_within = must_succeed_within

    def started(self, task: str) -> None:
        with self._lock:
            self.tasks.setdefault(task, TaskState()).last_started = self.clock.now()

    def succeeded(self, task: str) -> None:
        with self._lock:
            state = self.tasks.setdefault(task, TaskState())
            state.last_succeeded = self.clock.now()
            state.last_error = None
            state.consecutive_failures = 0

    def failed(self, task: str, error: str) -> int:
        with self._lock:
            state = self.tasks.setdefault(task, TaskState())
            state.last_error = mask(error)
            state.consecutive_failures += 1
            return state.consecutive_failures

    def report(self, *, details: bool = True) -> tuple[bool, dict[str, Any]]:
        """(healthy, body). Without `details` the body says only the status and which task
        is in trouble: raw errors name hosts and users, rule errors quote the rules, and
        /healthz is on the public port."""
        reasons = []
        database = "ok"
        try:
            self.check_database()
        except Exception as exc:
            database = f"unavailable: {mask(one_line(exc))}"
            reasons.append("database unavailable")
        if not self.scheduler_running:
            reasons.append("scheduler not running")
        now = self.clock.now()
        with self._lock:
            reasons += [
                reason
                for name, state in sorted(self.tasks.items())
                if (reason := self._trouble(name, state, now))
            ]
            body: dict[str, Any] = {
                "status": "ok" if not reasons else "unhealthy",
                "reasons": reasons,
            }
            if details:
                body |= {
                    "scheduler": "running" if self.scheduler_running else "stopped",
                    "database": database,
                    "tasks": {name: _task_details(state) for name, state in self.tasks.items()},
                    "rule_errors": list(self.rule_errors),
                    "plan_failures": dict(self.plan_failures),
                    "circuit": dict(self.circuit),
                }
        return not reasons, body

    def _trouble(self, name: str, state: TaskState, now: datetime) -> str | None:
        if state.consecutive_failures >= self.max_failures:
            return f"{name}: failed {state.consecutive_failures} times in a row"
        bound = state.must_succeed_within
        since = state.last_succeeded or self.started_at
        if bound is not None and since is not None:
            quiet = (now - since).total_seconds()
            if quiet > bound:
                what = "no success" if state.last_succeeded else "no success since start"
                return f"{name}: {what} for {quiet:.0f}s (expected within {bound:.0f}s)"
        return None


def _task_details(state: TaskState) -> dict[str, Any]:
    return {
        "last_started": _iso(state.last_started),
        "last_succeeded": _iso(state.last_succeeded),
        "last_error": state.last_error,
        "consecutive_failures": state.consecutive_failures,
        "must_succeed_within": state.must_succeed_within,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
