"""`campaigner run`: the runtime's passes as timed tasks, the HTTP server, signals, heartbeat."""

from __future__ import annotations

import errno
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import Clock
from campaigner.config import Settings
from campaigner.console.web import Console
from campaigner.daemon.health import Health
from campaigner.daemon.heartbeats import HEARTBEAT_INTERVAL, HEARTBEAT_PREFIX
from campaigner.daemon.http import health_routes
from campaigner.daemon.lock import InstanceLock
from campaigner.daemon.metrics import Metrics
from campaigner.daemon.service import Daemon, Task, run_once
from campaigner.db.engine import ping
from campaigner.db.models import SyncState
from campaigner.dispatch import DispatchReport
from campaigner.errors import CampaignerError
from campaigner.gateways import Gateway
from campaigner.inbound import check_inbound, handle_inbound
from campaigner.rules.models import TRIGGERS
from campaigner.runtime import Runtime
from campaigner.segments.daily import daily as daily_segments
from campaigner.segments.daily import due as segments_due
from campaigner.segments.daily import place_owed
from campaigner.segments.daily import tidy as tidy_segments
from campaigner.segments.scoring import ARRIVAL_WINDOW
from campaigner.server.app import create_app
from campaigner.server.guard import Guard
from campaigner.server.ingest import ingest_routes
from campaigner.server.protocol import ConnectionLimits
from campaigner.server.serve import BackgroundServer
from campaigner.sources.sync import sync_source

log = logging.getLogger("campaigner.daemon")


@dataclass
class OnceResult:
    errors: dict[str, Any]
    dispatch: DispatchReport

    gateway_errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """False when anything failed, including a gateway that was down (messages retried)."""
        report = self.dispatch
        return not (
            self.errors or report.paused or report.failed or report.retried or report.unknown
        )


class Service:
    """Everything `campaigner run` runs, built once; `tasks()` is what the timer wakes."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: Engine,
        sessions: sessionmaker[Session],
        clock: Clock,
        gateway: Gateway | None = None,
    ) -> None:
        """`gateway` replaces the configured one (tests)."""
        self.settings = settings
        self.engine = engine
        self.sessions = sessions
        self.clock = clock
        self.runtime = Runtime.build(settings, clock=clock, sessions=sessions, gateway=gateway)
        self.health = Health(
            clock=clock,
            check_database=lambda: ping(engine),
            max_failures=settings.daemon.unhealthy_after_failures,
        )
        self.health.rule_errors = [str(problem) for problem in self.runtime.rulebook.problems]
        self.metrics = Metrics(sessions, clock)
        for label in self.runtime.dispatcher.circuit:
            for kind in ("temporary", "permanent"):
                self.metrics.gateway_errors.labels(label, kind)  # scraped as 0, not missing
        self._count(DispatchReport())
        self.name = f"{HEARTBEAT_PREFIX}{socket.gethostname()}:{os.getpid()}"
        self.started_at = clock.now()
        self.stopping: Callable[[], bool] = lambda: False
        self._daemon: Daemon | None = None

    # -- the passes ------------------------------------------------------------------------

    def plan(self, triggers: tuple[str, ...] | None = None) -> bool:
        """One planning pass. A rule that fails is set aside while the others plan; a pass in
        which every rule failed planned nothing at all, and fails as a task (for /healthz)."""
        started = time.perf_counter()
        report = self.runtime.plan(triggers)
        self.metrics.planning_seconds.observe(time.perf_counter() - started)
        self.health.plan_failures = {
            name: failure.as_dict() for name, failure in self.runtime.quarantine.failures().items()
        }
        for name, result in report.rules.items():
            self.metrics.planned.labels(name, "queued").inc(result.planned)
            self.metrics.planned.labels(name, "held_out").inc(result.held_out)
        failing = {name: result.error for name, result in report.rules.items() if result.error}
        if failing and len(failing) == len(report.rules):
            raise CampaignerError(
                "every rule failed to plan: "
                + "; ".join(f"{name}: {error}" for name, error in sorted(failing.items()))
            )
        return report.planned > 0

    def dispatch(self) -> bool:
        """Dispatch batches until nothing is due; a stop request lets the requests in flight
        finish and hands the rest of the batch back to the queue."""
        started = time.perf_counter()
        # Each batch that went through is progress: a long drain is not a stuck one.
        total = self.runtime.drain(self.stopping, lambda _batch: self.health.succeeded("dispatch"))
        self.metrics.dispatch_seconds.observe(time.perf_counter() - started)
        self._count(total)
        return False

    def _count(self, report: DispatchReport) -> None:
        for outcome in ("sent", "failed", "deferred", "expired", "retried", "unknown"):
            self.metrics.dispatched.labels(outcome).inc(getattr(report, outcome))
        for reason, count in report.skipped.items():
            self.metrics.dispatched.labels(f"skipped:{reason}").inc(count)
        gateway = report.gateway or self.runtime.gateway.name
        if report.retried:
            self.metrics.gateway_errors.labels(gateway, "temporary").inc(report.retried)
        if report.failed:
            self.metrics.gateway_errors.labels(gateway, "permanent").inc(report.failed)
        for label, state in self.runtime.dispatcher.circuit.items():
            self.metrics.circuit_open.labels(label).set(0 if state == "closed" else 1)
            self.health.circuit[label] = str(state)

    def reconcile(self) -> bool:
        report = self.runtime.dispatcher.reconcile()
        if report.checked:
            log.info(
                "reconcile: %d unknown checked, %s, %d still unknown",
                report.checked,
                dict(report.updated),
                report.still_unknown,
            )
        return False

    def sync(self, source_name: str) -> bool:
        source = next(s for s in self.settings.sources if s.name == source_name)
        sync_source(self.sessions, source, self.settings, clock=self.clock)  # logs its summary
        return False

    def segments(self) -> bool:
        """The daily pass: inputs of the customers whose orders changed since the last one
        (everybody's the first time), then the shop-wide ranking, which also applies a map
        changed in config (campaigner/segments/daily.py)."""
        with self.sessions.begin() as session:
            result = daily_segments(
                session,
                self.settings.segments.segment_map,
                self.clock.now(),
                self.settings.customers.currency,
            )
        log.info(
            "segments: %d customers rescored, %d changed segment, %d placed for the first time"
            " (not recorded as a move: their first paid order is older than %d days)",
            result.scored,
            result.changed,
            result.placed,
            ARRIVAL_WINDOW.days,
        )
        tidy_segments(self.engine)
        return False

    def place_owed(self) -> bool:
        """The customers requests left owed to the next ranking (they found the rescoring
        lock taken), placed before the next segment_change planning, not at the next daily
        pass (campaigner/segments/daily.py)."""
        with self.sessions.begin() as session:
            result = place_owed(
                session,
                self.settings.segments.segment_map,
                self.clock.now(),
                self.settings.customers.currency,
            )
        if result is not None:
            log.info(
                "segments: placed the customers requests left owed: %d rescored,"
                " %d changed segment",
                result.scored,
                result.changed,
            )
        return False

    def poll_inbound(self) -> bool:
        gateway = self.runtime.gateway
        key = f"inbound:{gateway.name}"
        with self.sessions() as session:
            state = session.get(SyncState, key)
            cursor: dict[str, object] = dict(state.cursor) if state else {}
        messages, cursor = gateway.poll_inbound(cursor)
        with self.sessions.begin() as session:
            for sms in messages:
                try:
                    check_inbound(sms)
                except ValueError as exc:
                    log.warning("inbound via %s: one reply skipped: %s", gateway.name, exc)
                    continue
                handle_inbound(
                    session,
                    sms,
                    gateway=gateway.name,
                    settings=self.settings,
                    now=self.clock.now(),
                    nps_windows=self.runtime.rulebook.nps_windows(),
                )
            _save_state(session, key, cursor, self.clock.now())
        return False

    def watch_rules(self) -> bool:
        if self.runtime.rulebook.changed_on_disk():
            log.info("rule or template files changed: reloading")
            self.reload()
        return False

    def reload(self) -> None:
        """New rules and templates; the errors reach /healthz and `status` right away."""
        problems = self.runtime.rulebook.reload()
        self.health.rule_errors = [str(problem) for problem in problems]
        try:
            self.heartbeat()
        except DBAPIError as exc:
            log.warning("reload: could not report to the database (%s)", type(exc).__name__)

    def heartbeat(self) -> bool:
        now = self.clock.now()
        _, body = self.health.report()
        state = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": self.started_at.isoformat(),
            "last_tick": now.isoformat(),
            "health": body["status"],
            "health_reasons": body["reasons"],
            "circuit": body["circuit"],
            "rule_errors": body["rule_errors"],
            "plan_failures": body["plan_failures"],
        }
        gone = now - timedelta(seconds=self.settings.daemon.gone_after)
        with self.sessions.begin() as session:
            _save_state(session, self.name, state, now)
            session.execute(
                delete(SyncState).where(
                    SyncState.name.like(f"{HEARTBEAT_PREFIX}%"), SyncState.updated_at < gone
                )
            )
        return False

    # -- assembly --------------------------------------------------------------------------

    def tasks(self) -> list[Task]:
        """The timed tasks, each with the time within which it must succeed (K intervals;
        for dispatch at least a lease, the longest one batch may rightly take)."""
        daemon = self.settings.daemon
        intervals = daemon.unhealthy_after_intervals
        tasks = [
            Task(f"sync:{source.name}", source.interval, _bind(self.sync, source.name))
            for source in self.settings.sources
        ]
        overrides = {str(trigger): seconds for trigger, seconds in daemon.plan_intervals.items()}
        by_interval: dict[float, list[str]] = {}
        for trigger in TRIGGERS:
            seconds = overrides.get(trigger, daemon.plan_interval)
            by_interval.setdefault(seconds, []).append(trigger)
        for seconds, triggers in sorted(by_interval.items()):
            name = "plan" if len(by_interval) == 1 else f"plan:{'+'.join(triggers)}"
            tasks.append(Task(name, seconds, _bind(self.plan, tuple(triggers)), wakes="dispatch"))
        tasks += [
            Task("dispatch", daemon.dispatch_interval, self.dispatch),
            Task("reconcile", daemon.reconcile_interval, self.reconcile),
            Task("watch", daemon.watch_interval, self.watch_rules),
            Task("heartbeat", HEARTBEAT_INTERVAL, self.heartbeat),
            Task("segments", self.settings.segments.daily_interval, self.segments),
            Task(
                "segments:owed",
                overrides.get("segment_change", daemon.plan_interval),
                self.place_owed,
            ),
        ]
        if self.runtime.gateway.polls_inbound:
            tasks.append(Task("inbound", daemon.inbound_poll_interval, self.poll_inbound))
        for task in tasks:
            task.must_succeed_within = intervals * task.interval
            if task.name == "dispatch":
                lease = float(self.settings.sending.lease_seconds)
                task.must_succeed_within = max(task.must_succeed_within, lease)
        return tasks

    def http_app(self, guard: Guard | None = None) -> Any:
        """The daemon's web app; `guard` reads the bodies (its drops are the server's)."""
        guard = guard or Guard.of(self.settings)
        console = self.settings.console
        console_routes = (
            Console(self.settings, self.sessions, self.clock, guard.drops).routes()
            if console.enabled and not console.separate
            else []
        )
        return create_app(
            settings=self.settings,
            sessions=self.sessions,
            clock=self.clock,
            gateways=self.runtime.gateways,
            extra_routes=[
                *health_routes(self.health, self.metrics, self.settings.server),
                *ingest_routes(
                    settings=self.settings, sessions=self.sessions, clock=self.clock, guard=guard
                ),
                *console_routes,
            ],
            nps_windows=self.runtime.rulebook.nps_windows,
            guard=guard,
        )

    def run_once(self) -> OnceResult:
        """Sync, the segments pass when due, plan, dispatch everything due, reconcile: for
        cron and tests."""
        dispatched = DispatchReport()

        def dispatch_all() -> bool:
            dispatched.add(self.runtime.drain())
            return False

        once = [
            *(t for t in self.tasks() if t.name.startswith("sync:")),
            Task("segments", 0, self._segments_if_due),
            Task("segments:owed", 0, self.place_owed),
            Task("plan", 0, lambda: self.plan(None)),
            Task("dispatch", 0, dispatch_all),
            Task("reconcile", 0, self.reconcile),
        ]
        errors = run_once(once, self.health)
        gateway_errors = {
            route.label: route.breaker.last_error
            for route in self.runtime.dispatcher.routes.all
            if route.breaker.last_error
        }
        return OnceResult(errors, dispatched, gateway_errors)

    def _segments_if_due(self) -> bool:
        """`run --once`'s segments pass, when a daily interval has passed since the last one
        (a sync just before may have run the shop's first pass): without it a shop run from
        cron never ranked its customers again (recency never aged, a segment_change rule to
        "at_risk" or "lost" never fired), yet a pass every few minutes would rank the whole
        shop each time."""
        interval = timedelta(seconds=self.settings.segments.daily_interval)
        with self.sessions() as session:
            if not segments_due(session, self.clock.now(), interval):
                return False
        return self.segments()

    def run_forever(self) -> bool:
        """Run until stopped; False when work in flight outlasted the stop timeout (the
        caller must then exit without waiting for it: its rows are left to their lease)."""
        daemon = Daemon(
            self.tasks(),
            health=self.health,
            on_reload=self.reload,
            on_stop=self._stopped,
            stop_timeout=self.settings.daemon.stop_timeout,
        )
        self.stopping = daemon.stopping.is_set
        self._daemon = daemon
        server = self._listen()
        log.info(
            "listening on http://%s:%d (healthz, metrics, webhooks, api)", server.host, server.port
        )
        console = self._console(server)
        try:
            daemon.run_forever()
        finally:
            if console is not server:
                console.stop()
            server.stop()
        return not daemon.abandoned

    def _listen(self) -> BackgroundServer:
        host, port = self.settings.server.host, self.settings.server.port
        guard = Guard.of(self.settings)
        try:
            return BackgroundServer(
                self.http_app(guard),
                host=host,
                port=port,
                limits=ConnectionLimits.of(self.settings.server),
                drops=guard.drops,
            ).start()
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise CampaignerError(
                f"cannot listen on {host}:{port}: the port is in use (another `campaigner run`?); "
                f"choose another with server.port in {self.settings.config_file or 'config.toml'} "
                f"or the environment variable CAMPAIGNER_SERVER__PORT"
            ) from None

    def _console(self, server: BackgroundServer) -> BackgroundServer:
        """The server the console answers on: its own when [console] names an address."""
        console = self.settings.console
        if not console.enabled:
            return server
        if console.separate:
            host = console.host or self.settings.server.host
            site = Console(self.settings, self.sessions, self.clock)
            server = BackgroundServer(
                site.app(),
                host=host,
                port=console.port,
                limits=ConnectionLimits.of(self.settings.server),
                drops=site.drops,
            ).start()
        log.info("console on %s/console/", server.url)
        return server

    def _stopped(self) -> None:
        with self.sessions.begin() as session:
            row = session.get(SyncState, self.name)
            if row is not None:
                session.delete(row)
        if (
            self._daemon is None or not self._daemon.abandoned
        ):  # closing would wait for the sends still running
            self.runtime.close()


def _bind(function: Callable[..., bool], *args: Any) -> Callable[[], bool]:
    return lambda: function(*args)


def _save_state(session: Session, name: str, cursor: dict[str, Any], now: datetime) -> None:
    state = session.get(SyncState, name)
    if state is None:
        session.add(SyncState(name=name, cursor=cursor, updated_at=now))
    else:
        state.cursor, state.updated_at = cursor, now


def lock_for(settings: Settings) -> InstanceLock | None:
    return InstanceLock.for_database(settings.database.url)
