"""The daemon's Service in-process: each task's health bound, dispatch progress, heartbeats,
and what a failing rule looks like on /healthz and in status."""

from __future__ import annotations

import logging
import socket
import sqlite3
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import cast

import pytest
from click.testing import CliRunner
from conftest import CaptureGateway, FixedRules, add_paid_order
from pydantic import TypeAdapter
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette

from campaigner.cli import cli
from campaigner.clock import FixedClock
from campaigner.config import Settings, SourceSettings
from campaigner.daemon.heartbeats import HEARTBEAT_PREFIX
from campaigner.daemon.runner import Service
from campaigner.db.models import Customer, CustomerScore, Message, SegmentChange, SyncState
from campaigner.errors import CampaignerError
from campaigner.gateways.base import OutgoingMessage, SendResult
from campaigner.rules.models import Rule
from campaigner.segments.daily import OWED, owe
from campaigner.server.droplog import FIRST_IN_FULL


def configure(settings: Settings, **daemon: float) -> Settings:
    rules = settings.paths.rules
    rules.mkdir(parents=True, exist_ok=True)
    (rules / "thank_you.toml").write_text(
        'trigger = "post_purchase"\ntemplate = "thank_you.j2"\ndelay = "2h"\n'
        "transactional = true\n",
        encoding="utf-8",
    )
    settings.paths.templates.mkdir(parents=True, exist_ok=True)
    (settings.paths.templates / "thank_you.j2").write_text("Hi {{ first_name }}", "utf-8")
    return settings.model_copy(
        update={"daemon": settings.daemon.model_copy(update=daemon)}, deep=True
    )


def service(
    settings: Settings,
    engine: Engine,
    sessions: sessionmaker[Session],
    clock: FixedClock,
    gateway: CaptureGateway | None = None,
) -> Service:
    return Service(
        settings, engine=engine, sessions=sessions, clock=clock, gateway=gateway or CaptureGateway()
    )


def test_each_task_must_succeed_within_k_intervals_and_dispatch_within_a_lease(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    settings = configure(settings, unhealthy_after_intervals=4, dispatch_interval=5)
    bounds = {
        task.name: task.must_succeed_within
        for task in service(settings, engine, sessions, clock).tasks()
    }
    every_minute = "post_purchase+referral_request+nps_survey+segment_change+cross_sell+replenish"
    assert bounds[f"plan:{every_minute}+announcement+draw_winner"] == 4 * 60
    assert bounds["plan:birthday+win_back+occasion+personal_date"] == 4 * 900
    assert bounds["reconcile"] == 4 * 60
    assert bounds["watch"] == 4 * 5
    # One batch may rightly take up to its lease (120 s), more than 4 × 5 s.
    assert bounds["dispatch"] == settings.sending.lease_seconds == 120


class SlowGateway(CaptureGateway):
    """Each request takes 100 s of the test's clock; it asks /healthz mid-drain."""

    def __init__(self, clock: FixedClock) -> None:
        super().__init__()
        self.clock = clock
        self.seen: list[tuple[bool, list[str]]] = []
        self.service: Service | None = None

    def send(self, batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        assert self.service is not None
        self.clock.advance(timedelta(seconds=100))
        ok, body = self.service.health.report()
        self.seen.append((ok, body["reasons"]))
        return super().send(batch)


def test_a_long_drain_that_makes_progress_is_healthy(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    """Five batches of 100 s each: far beyond the bound as a whole, within it per batch."""
    settings = configure(settings)
    settings.sending.batch_size = 1
    settings.sending.window = "00:00-23:59"
    with sessions.begin() as session:
        for n in range(5):
            customer = Customer(
                external_id=f"c{n}", first_name=f"Sara{n}", phone=f"+98912000000{n}"
            )
            session.add(customer)
            session.flush()
            session.add(
                Message(
                    rule="thank_you",
                    customer_id=customer.id,
                    occurrence_key=f"o{n}",
                    status="queued",
                    phone=customer.phone,
                    due_at=clock.now(),
                    scheduled_for=clock.now(),
                    expires_at=clock.now() + timedelta(days=1),
                )
            )
    gateway = SlowGateway(clock)
    daemon = service(settings, engine, sessions, clock, gateway)
    gateway.service = daemon
    daemon.health.scheduler_running = True
    daemon.health.expect("dispatch", 150)
    daemon.dispatch()
    assert len(gateway.sent) == 5
    assert gateway.seen == [(True, [])] * 5
    with sessions() as session:
        assert set(session.scalars(select(Message.status))) == {"sent"}


def test_a_heartbeat_forgets_daemons_gone_longer_than_gone_after(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    settings = configure(settings, gone_after=300)
    with sessions.begin() as session:
        for name, age in (("killed", 301), ("quiet", 299)):
            session.add(
                SyncState(
                    name=f"{HEARTBEAT_PREFIX}host:{name}",
                    cursor={"last_tick": (clock.now() - timedelta(seconds=age)).isoformat()},
                    updated_at=clock.now() - timedelta(seconds=age),
                )
            )
    daemon = service(settings, engine, sessions, clock)
    daemon.heartbeat()
    with sessions() as session:
        names = set(session.scalars(select(SyncState.name)))
    assert names == {f"{HEARTBEAT_PREFIX}host:quiet", daemon.name}


def thanks(name: str) -> Rule:
    return TypeAdapter(Rule).validate_python(
        {"name": name, "trigger": "post_purchase", "template": "x", "delay": "2h"}
    )


def test_a_rule_failing_to_plan_shows_on_healthz_and_in_status(
    settings: Settings,
    engine: Engine,
    sessions: sessionmaker[Session],
    clock: FixedClock,
    tmp_path: Path,
    db_url: str,
) -> None:
    settings.paths.rules.mkdir()
    settings.paths.templates.mkdir()
    add_paid_order(sessions, clock, 1)
    service = Service(settings, engine=engine, sessions=sessions, clock=clock)
    broken = thanks("broken").model_copy(update={"priority": 2**70})
    service.runtime.rulebook = FixedRules(broken, thanks("thank_you"))  # type: ignore[assignment]
    try:
        assert service.plan() is True  # the thank-you was planned
        _, body = service.health.report()
        failure = body["plan_failures"]["broken"]
        assert failure["failures"] == 1 and failure["since"] == clock.now().isoformat()
        assert failure["retry_at"] == (clock.now() + timedelta(minutes=1)).isoformat()
        assert "\n" not in failure["error"] and len(failure["error"]) <= 300
        service.heartbeat()
    finally:
        service.runtime.close()
    config = tmp_path / "config.toml"
    # The heartbeat carries the fixed clock's day, months before `status`'s own clock.
    config.write_text(
        f'[database]\nurl = "{db_url}"\n[daemon]\ngone_after = 1e12\n', encoding="utf-8"
    )
    result = CliRunner().invoke(cli, ["--config", str(config), "status"])
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.output.splitlines() if "rule broken" in line]
    assert line.strip().startswith(
        f"rule broken failed to plan 1 time since {clock.now():%Y-%m-%d %H:%M} UTC: "
    )
    assert line.endswith(
        f"next try {clock.now() + timedelta(minutes=1):%H:%M} UTC or when its file changes"
    )


def test_a_pass_in_which_every_rule_fails_fails_the_planning_task(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    """One failing rule beside a good one is that rule's problem; when every rule fails,
    nothing is planned at all, and /healthz must hear of it."""
    settings.paths.rules.mkdir()
    settings.paths.templates.mkdir()
    add_paid_order(sessions, clock, 1)
    service = Service(settings, engine=engine, sessions=sessions, clock=clock)
    broken = [thanks(name).model_copy(update={"priority": 2**70}) for name in ("a", "b")]
    service.runtime.rulebook = FixedRules(*broken)  # type: ignore[assignment]
    try:
        with pytest.raises(CampaignerError, match=r"every rule failed to plan: a: .*; b: "):
            service.plan()
        assert set(service.health.plan_failures) == {"a", "b"}
        clock.advance(timedelta(seconds=1))  # both set aside now: still nothing planned
        with pytest.raises(CampaignerError, match="every rule failed to plan"):
            service.plan()
    finally:
        service.runtime.close()


def test_a_sync_pass_logs_its_summary_once_and_readably(
    settings: Settings,
    engine: Engine,
    sessions: sessionmaker[Session],
    clock: FixedClock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Seen: every sync pass also logged "sync shop: SyncReport(source='shop', kinds={…})".
    shop = tmp_path / "shop.db"
    with sqlite3.connect(shop) as connection:
        connection.execute("CREATE TABLE people (external_id TEXT, first_name TEXT, mobile TEXT)")
        connection.execute("INSERT INTO people VALUES ('c1', 'Sara', '09121234567')")
    source = SourceSettings.model_validate(
        {"name": "shop", "url": f"sqlite:///{shop}", "customers": {"table": "people"}}
    )
    settings = configure(settings).model_copy(update={"sources": [source]})
    caplog.set_level("INFO")
    service(settings, engine, sessions, clock).sync("shop")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("sync ")]
    assert lines == ["sync shop: customers 1 read: 1 new, 0 updated, 0 unchanged, 0 rejected"], (
        caplog.text
    )


def test_the_daily_segments_task_recomputes_everybody_and_is_health_reported(
    settings: Settings,
    engine: Engine,
    sessions: sessionmaker[Session],
    clock: FixedClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = configure(settings, unhealthy_after_intervals=2)
    runner = service(settings, engine, sessions, clock)
    task = next(task for task in runner.tasks() if task.name == "segments")
    assert (task.interval, task.must_succeed_within) == (86400, 2 * 86400)
    add_paid_order(sessions, clock, 1)  # written behind the loader's back: no segment yet
    with sessions() as session:
        assert session.scalar(select(Customer.segment)) == "none"
    with caplog.at_level(logging.INFO, logger="campaigner"):
        task.run()
    assert "segments: 1 customers rescored, 1 changed segment, 0 placed for the first" in (
        caplog.text
    )
    with sessions() as session:
        customer = session.scalars(select(Customer)).one()
        scores = session.get_one(CustomerScore, customer.id)
    assert (customer.segment, scores.currency) == ("lost", "IRT")
    assert scores.spent is not None and scores.spent == 1


def test_run_once_runs_the_segments_pass_once_a_daily_interval(
    settings: Settings, engine: Engine, sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    """Regression: `run --once` (cron) never ran the segments pass, so a shop run from cron
    never ranked its customers unless a loader did: recency never aged and a segment_change
    rule never saw a customer move with time. It now runs when a daily interval has passed
    since the last one, not at every run cron starts."""
    settings = configure(settings)
    add_paid_order(sessions, clock, 1)  # inputs not refreshed: only a segments pass places c1

    def ran_at() -> str | None:
        with sessions() as session:
            state = session.get(SyncState, "segments:daily")
            return None if state is None else state.cursor.get("ran_at")

    def placed() -> bool:
        with sessions() as session:
            return session.scalar(select(CustomerScore.customer_id)) is not None

    service(settings, engine, sessions, clock).run_once()
    first = clock.now().isoformat()
    assert (ran_at(), placed()) == (first, True)
    clock.advance(timedelta(seconds=settings.segments.daily_interval - 60))
    service(settings, engine, sessions, clock).run_once()
    assert ran_at() == first
    clock.advance(timedelta(seconds=60))
    service(settings, engine, sessions, clock).run_once()
    assert ran_at() == clock.now().isoformat()


def test_the_daemon_s_server_says_the_drops_of_its_guard_when_it_stops(
    settings: Settings,
    engine: Engine,
    sessions: sessionmaker[Session],
    clock: FixedClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Regression: the bodies the guard drops (not in time, their client gone, their slot
    given to a newer request) were counted apart from the server's connections, and a
    daemon stopped before the interval ended never said those counts. The server's drops
    are the guard's, and its stop says them."""
    caplog.set_level(logging.INFO, logger="campaigner.server")
    settings = configure(settings).model_copy(
        update={"server": settings.server.model_copy(update={"port": 0})}, deep=True
    )
    server = service(settings, engine, sessions, clock)._listen()
    try:
        guard = cast(Starlette, server.app).state.guard
        for n in range(FIRST_IN_FULL + 2):
            guard.drops.info("clients gone mid-body", "gone %d", n, who="203.0.113.9")
    finally:
        server.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "campaigner.server"]
    assert lines[:FIRST_IN_FULL] == [f"gone {n}" for n in range(FIRST_IN_FULL)]
    (counts,) = lines[FIRST_IN_FULL:]
    assert counts.startswith("2 more dropped in the ")
    assert counts.endswith(
        "s before the server stopped, not logged one by one (the first "
        f"{FIRST_IN_FULL} of each reason were): 2 clients gone mid-body (from 203.0.113.9 2)"
    )


@pytest.mark.parametrize("runner", ["the daemon", "run --once"])
def test_a_customer_a_request_left_owed_is_placed_within_a_planning_interval(
    settings: Settings,
    engine: Engine,
    sessions: sessionmaker[Session],
    clock: FixedClock,
    runner: str,
) -> None:
    """Regression: a request that found the rescoring lock taken (PostgreSQL: a pass, or
    another request ranking) left its customer owed, and on a quiet shop nothing placed them
    until the next daily pass: a welcome a day late, and never with a `daily_interval` over
    ARRIVAL_WINDOW (placed that late, the first placement is not a move). The daemon now
    places what is owed every segment_change planning interval, and `run --once` each run."""
    settings = configure(settings)
    for n in range(1, 6):
        add_paid_order(sessions, clock, n)  # long-standing customers
    clock.advance(timedelta(days=30))
    shop = service(settings, engine, sessions, clock)
    shop.run_once()  # the shop's first pass
    add_paid_order(sessions, clock, 6)  # paid 3 hours ago, its inputs left to the next ranking
    with sessions.begin() as session:
        owe(
            session,
            [session.scalars(select(Customer.id).where(Customer.external_id == "c6")).one()],
            clock.now(),
        )
    clock.advance(timedelta(minutes=1))
    if runner == "the daemon":
        task = next(task for task in shop.tasks() if task.name == "segments:owed")
        assert task.interval == settings.daemon.plan_interval
        task.run()
    else:
        service(settings, engine, sessions, clock).run_once()  # the daily pass is not due
    with sessions() as session:
        moves = session.execute(select(SegmentChange.old, SegmentChange.new)).all()
        owed = session.scalar(select(SyncState.name).where(SyncState.name.like(f"{OWED}%")))
    assert [tuple(move) for move in moves] == [("none", "new")]  # a welcome rule's move
    assert owed is None


def test_the_daemon_s_server_says_the_console_s_dropped_bodies_when_it_stops(
    settings: Settings,
    engine: Engine,
    sessions: sessionmaker[Session],
    clock: FixedClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Regression: the console read its bodies (sign-in, forms) with the process's own drop
    log, not the server's: a flood of sign-ins gone mid-body past the first few was counted
    where no stop would say it. They are the server's drops, said when it stops."""
    caplog.set_level(logging.INFO, logger="campaigner.server")
    settings = configure(settings).model_copy(
        update={"server": settings.server.model_copy(update={"port": 0})}, deep=True
    )
    head = b"POST /console/login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nuser="
    server = service(settings, engine, sessions, clock)._listen()
    try:
        for _ in range(FIRST_IN_FULL + 2):
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                sock.sendall(head)
    finally:
        server.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "campaigner.server"]
    gone = [line for line in lines if line.startswith("POST /console/login: the client ")]
    assert len(gone) == FIRST_IN_FULL
    (counts,) = [line for line in lines if "more dropped" in line]
    assert counts.startswith("2 more dropped in the ")
    assert counts.endswith(
        "s before the server stopped, not logged one by one (the first "
        f"{FIRST_IN_FULL} of each reason were): 2 clients gone mid-body (from 127.0.0.1 2)"
    )
