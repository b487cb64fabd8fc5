"""The report's two sessions read one snapshot: its sections, counted at the same time on two
connections, add up even when a write commits while they start."""

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from report_scenario import ATTRIBUTION, NOW, SINCE, UNTIL, at, phone, scenario_report
from report_scenario import scenario_settings as adjust
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.db import create_engine_for, session_factory
from campaigner.db.models import Message
from campaigner.db.snapshot import read_only_pair
from campaigner.reports import Report, build_report
from campaigner.reports.sections import Section, run_sections


def paired_report(engine: Engine, settings: Settings) -> Report:
    with read_only_pair(engine) as (session, helper):
        assert helper is not None  # a file or a server: the work is split
        return build_report(
            session,
            since=SINCE,
            until=UNTIL,
            rule=None,
            attribution_days=ATTRIBUTION,
            settings=adjust(settings),
            clock=FixedClock(NOW),
            helper=helper,
        )


def test_two_sessions_give_the_report_of_one(
    engine: Engine, sessions: sessionmaker[Session], settings: Settings
) -> None:
    alone = scenario_report(sessions, settings)
    assert paired_report(engine, settings) == alone


def late_message(message_id: int) -> Message:
    """A thank-you sent in March: counted by the ledger pass (sent) and by the conversion
    join (its segment's messages) if a session sees it."""
    return Message(
        id=message_id,
        rule="thank_you",
        customer_id=5,
        occurrence_key=f"late-{message_id}",
        status="sent",
        phone=phone(5),
        due_at=at(3, 20),
        scheduled_for=at(3, 20),
        sent_at=at(3, 20),
        segments=1,
        encoding="gsm7",
    )


def test_a_write_committed_while_the_sessions_start_is_in_neither(
    engine: Engine, sessions: sessionmaker[Session], settings: Settings, db_url: str
) -> None:
    before = scenario_report(sessions, settings)
    sent_before = next(stats.sent for stats in before.rules if stats.rule == "thank_you")
    writer = create_engine_for(db_url, lock_timeout=0.2)
    outcome: list[str] = []

    def write(message_id: int) -> None:
        with session_factory(writer).begin() as session:
            session.add(late_message(message_id))

    # Between the first session taking its snapshot and the second taking its own.
    second_start = (
        "SET TRANSACTION SNAPSHOT"
        if engine.dialect.name == "postgresql"
        else "SELECT count(*) FROM sqlite_master"
    )
    starts: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _between(_c: Any, _cu: Any, statement: str, *_: Any) -> None:
        if not statement.startswith(second_start):
            return
        starts.append(statement)
        if engine.dialect.name == "sqlite" and len(starts) < 2:
            return
        try:
            write(900)
            outcome.append("committed")
        except OperationalError as error:  # SQLite: the pair holds the write lock meanwhile
            assert "locked" in str(error)
            outcome.append("locked out")

    with read_only_pair(engine) as (session, helper):
        event.remove(engine, "before_cursor_execute", _between)
        write(901)  # after both started: a write during the report itself
        report = build_report(
            session,
            since=SINCE,
            until=UNTIL,
            rule=None,
            attribution_days=ATTRIBUTION,
            settings=adjust(settings),
            clock=FixedClock(NOW),
            helper=helper,
        )
    thank_you = next(stats for stats in report.rules if stats.rule == "thank_you")
    # The ledger pass (first session) and the conversion join (second) agree, without the writes.
    assert thank_you.sent == sent_before
    assert sum(group.sent for group in thank_you.by_segment) == sent_before
    assert thank_you.uplift is not None and thank_you.uplift.messaged == sent_before
    expected = "committed" if engine.dialect.name == "postgresql" else "locked out"
    assert outcome == [expected]
    after = paired_report(engine, settings)
    late = 2 if expected == "committed" else 1
    thank_you = next(stats for stats in after.rules if stats.rule == "thank_you")
    assert thank_you.sent == sent_before + late
    assert sum(group.sent for group in thank_you.by_segment) == sent_before + late
    writer.dispose()


def test_an_in_memory_database_is_read_in_one_session(settings: Settings) -> None:
    engine = create_engine_for("sqlite://")
    with read_only_pair(engine) as (session, helper):
        assert helper is None
        assert session.get_bind() is not None
    engine.dispose()


def test_a_failing_section_fails_the_report_after_the_other_session_is_done(
    engine: Engine,
) -> None:
    started: list[str] = []
    ended: list[str] = []

    def fails(session: Session) -> None:
        session.execute(text("SELECT 1"))
        raise ValueError("broken section")

    def counts(name: str) -> Section:
        def section(session: Session) -> int:
            started.append(name)
            count = int(session.scalar(text("SELECT count(*) FROM messages")) or 0)
            ended.append(name)
            return count

        return section

    sections = {"fails": fails} | {f"s{n}": counts(f"s{n}") for n in range(50)}
    with read_only_pair(engine) as (session, helper):
        assert helper is not None
        with pytest.raises(ValueError, match="broken section"):
            run_sections([session, helper], sections)
        # Nothing still runs on the helper when the error reaches the caller.
        assert sorted(started) == sorted(ended)


def test_sections_on_two_sessions_give_every_result(engine: Engine) -> None:
    def number(n: int) -> Section:
        return lambda session: session.scalar(text("SELECT :n"), {"n": n})

    with read_only_pair(engine) as (session, helper):
        assert helper is not None
        done = run_sections([session, helper], {f"s{n}": number(n) for n in range(20)})
    assert done == {f"s{n}": n for n in range(20)}


def test_sqlite_reads_in_one_session_when_a_writer_keeps_the_lock(
    tmp_path: Path, sqlite_template: Path
) -> None:
    path = tmp_path / "locked.db"
    shutil.copyfile(sqlite_template, path)
    engine = create_engine_for(f"sqlite:///{path}", lock_timeout=0.1)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a dispatcher batch in the middle of its transaction
    try:
        with read_only_pair(engine) as (session, helper):
            assert helper is None
            assert session.scalar(text("SELECT count(*) FROM messages")) == 0
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        engine.dispose()
