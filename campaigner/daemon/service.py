"""The long-running service: APScheduler as a timer, nothing more.

Jobs live in memory; a missed tick is simply caught up by the next one, because the planner
works from due windows in the ledger, not from the timer's history. A task that fails (the
database went away) is retried with backoff and reported on /healthz; it never kills the
process.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import DBAPIError, OperationalError

from campaigner.daemon.health import Health
from campaigner.errors import one_line

log = logging.getLogger("campaigner.daemon")

MAX_BACKOFF_SECONDS = 60.0


@dataclass
class Task:
    """A periodic piece of work. When `run` returns True, the task named `wakes` runs now."""

    name: str
    interval: float
    run: Callable[[], bool]
    wakes: str | None = None


class Daemon:
    def __init__(
        self,
        tasks: Sequence[Task],
        *,
        health: Health,
        on_reload: Callable[[], None] | None = None,
        on_stop: Callable[[], None] | None = None,
        stop_timeout: float = 30.0,
    ) -> None:
        self.tasks = {task.name: task for task in tasks}
        self.health = health
        self.on_reload = on_reload
        self.on_stop = on_stop
        self.stop_timeout = stop_timeout
        self.stopping = threading.Event()
        self.abandoned = False  # work was still running when stop_timeout ran out
        self._reload_requested = threading.Event()
        self._stop_requested = False
        self._scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(max_workers=max(2, len(self.tasks)))},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )

    def start(self) -> None:
        now = datetime.now(UTC)
        for task in self.tasks.values():
            self._scheduler.add_job(
                self._run_task,
                "interval",
                seconds=task.interval,
                args=[task.name],
                id=task.name,
                next_run_time=now,
            )
        self._scheduler.start()
        self.health.scheduler_running = True
        log.info(
            "daemon started: %s",
            ", ".join(f"{t.name} every {t.interval:g}s" for t in self.tasks.values()),
        )

    def wake(self, name: str) -> None:
        """Run a task as soon as a worker is free (e.g. dispatch right after planning)."""
        if name in self.tasks and not self.stopping.is_set():
            self._scheduler.modify_job(name, next_run_time=datetime.now(UTC))

    def _run_task(self, name: str) -> None:
        if self.stopping.is_set():
            return
        task = self.tasks[name]
        self.health.started(name)
        try:
            more = task.run()
        except (OperationalError, DBAPIError) as exc:
            failures = self.health.failed(name, f"database error: {type(exc.orig).__name__}")
            delay = min(MAX_BACKOFF_SECONDS, 2.0 ** min(failures, 6))
            log.error(
                "%s: database unavailable (%s); retrying in %.0fs", name, one_line(exc), delay
            )
            self._retry_in(name, delay)
            return
        except Exception as exc:
            failures = self.health.failed(name, f"{type(exc).__name__}: {exc}")
            delay = min(MAX_BACKOFF_SECONDS, 2.0 ** min(failures, 6))
            log.exception("%s failed; retrying in %.0fs", name, delay)
            self._retry_in(name, delay)
            return
        self.health.succeeded(name)
        if more and task.wakes:
            self.wake(task.wakes)

    def _retry_in(self, name: str, seconds: float) -> None:
        if not self.stopping.is_set():
            when = datetime.now(UTC) + timedelta(seconds=min(seconds, self.tasks[name].interval))
            self._scheduler.modify_job(name, next_run_time=when)

    def request_reload(self) -> None:
        self._reload_requested.set()

    def reload(self) -> None:
        """Reload in a worker: checking templates renders each one (within its render
        budget), and the main thread must stay free to act on SIGTERM meanwhile."""
        if self.on_reload is not None and not self.stopping.is_set():
            self._scheduler.add_job(self._reload, id="reload", replace_existing=True)

    def _reload(self) -> None:
        if self.on_reload is not None:
            try:
                self.on_reload()
            except Exception:
                log.exception("reload failed; the previous rules keep running")

    def stop(self) -> None:
        """Finish the work in flight (bounded by stop_timeout), release claims, stop."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        log.info("stopping: finishing the batch in flight (at most %.0fs)", self.stop_timeout)
        finisher = threading.Thread(target=self._scheduler.shutdown, kwargs={"wait": True})
        finisher.start()
        finisher.join(self.stop_timeout)
        if finisher.is_alive():
            self.abandoned = True
            log.warning(
                "work still running after %.0fs; leaving it to its lease", self.stop_timeout
            )
        self.health.scheduler_running = False
        if self.on_stop is not None:
            self.on_stop()
        log.info("stopped")

    def run_forever(self) -> None:
        """Block until SIGTERM or SIGINT; SIGHUP reloads rules and templates."""
        previous = {
            sig: signal.signal(sig, self._on_signal)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        }
        try:
            self.start()
            while not self._stop_requested:
                if self._reload_requested.wait(0.2):
                    self._reload_requested.clear()
                    if not self._stop_requested:
                        self.reload()
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            log.info("SIGHUP: reloading rules and templates")
            self._reload_requested.set()
        else:
            log.info("%s received", signal.Signals(signum).name)
            self._stop_requested = True
            self._reload_requested.set()  # wake the main loop


def run_once(tasks: Sequence[Task], health: Health) -> dict[str, Any]:
    """Run each task once, in order, for `campaigner run --once`; returns errors by task."""
    errors: dict[str, Any] = {}
    for task in tasks:
        health.started(task.name)
        try:
            task.run()
        except Exception as exc:
            log.exception("%s failed", task.name)
            errors[task.name] = f"{type(exc).__name__}: {exc}"
            health.failed(task.name, errors[task.name])
        else:
            health.succeeded(task.name)
    return errors
