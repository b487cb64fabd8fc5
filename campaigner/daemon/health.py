"""What /healthz reports: is the scheduler running, does the database answer, how did each
task do last time. Shared by the task threads and the HTTP thread, hence the lock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from campaigner.clock import Clock
from campaigner.masking import mask


@dataclass
class TaskState:
    last_started: datetime | None = None
    last_succeeded: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0


@dataclass
class Health:
    clock: Clock
    check_database: Callable[[], None]
    scheduler_running: bool = False
    tasks: dict[str, TaskState] = field(default_factory=dict)
    rule_errors: list[str] = field(default_factory=list)
    # Rules that fail at plan time, by name: error, since, failures, retry_at.
    plan_failures: dict[str, dict[str, Any]] = field(default_factory=dict)
    circuit: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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

    def report(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, body): healthy when the scheduler runs and the database answers now."""
        reasons = []
        database = "ok"
        try:
            self.check_database()
        except Exception as exc:
            database = f"unavailable: {type(exc).__name__}"
            reasons.append("database unavailable")
        if not self.scheduler_running:
            reasons.append("scheduler not running")
        with self._lock:
            tasks = {
                name: {
                    "last_started": _iso(state.last_started),
                    "last_succeeded": _iso(state.last_succeeded),
                    "last_error": state.last_error,
                    "consecutive_failures": state.consecutive_failures,
                }
                for name, state in self.tasks.items()
            }
            body = {
                "status": "ok" if not reasons else "unhealthy",
                "reasons": reasons,
                "scheduler": "running" if self.scheduler_running else "stopped",
                "database": database,
                "tasks": tasks,
                "rule_errors": list(self.rule_errors),
                "plan_failures": dict(self.plan_failures),
                "circuit": dict(self.circuit),
            }
        return not reasons, body


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
