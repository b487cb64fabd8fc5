"""Announcements planned: recipient-local `at` in three zones, `timezone = "shop"`,
`spread`, the confirmation gate, the audience extras, and editing after sending started."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from announcement_shop import ZONES, add_customers, ledger, rule, utc, write_announcement
from shop_builders import run_daemon_loop
from sqlalchemy import delete, text
from sqlalchemy.orm import Session, sessionmaker

from campaigner.announcements import gate
from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.db.models import Announcement, Message
from campaigner.planner import plan
from campaigner.rules.models import AnnouncementRule, Rule
from campaigner.rules.triggers.announcement import spread_offset
from campaigner.simulate import TICK

AT = datetime(2026, 12, 20, 10, 0)


def confirm(sessions: sessionmaker[Session], announcement: Rule, now: datetime) -> None:
    assert isinstance(announcement, AnnouncementRule)
    with sessions.begin() as session:
        gate.confirm(session, announcement, "maryam", now)


def test_nothing_is_queued_until_confirmed(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    add_customers(sessions, 3)
    sale = rule(at="2026-12-20T10:00")
    clock = FixedClock(utc(2026, 12, 19, 8))
    with sessions.begin() as session:
        report = plan(session, [sale], clock, settings)
    assert ledger(sessions) == []
    assert report.rules["yalda_sale"].awaiting_approval
    confirm(sessions, sale, clock.now())
    with sessions.begin() as session:
        report = plan(session, [sale], clock, settings)
    assert report.rules["yalda_sale"].planned == 3
    with sessions() as session:
        found = gate.record(session, "yalda_sale", "2026-12-20T10:00")
        assert found is not None
        assert (found.approved_by, found.approved_at) == ("maryam", clock.now())


def test_approved_in_the_file_queues_without_confirmation(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    add_customers(sessions, 2)
    clock = FixedClock(utc(2026, 12, 19, 8))
    with sessions.begin() as session:
        plan(session, [rule(at="2026-12-20T10:00", approved=True)], clock, settings)
    assert len(ledger(sessions)) == 2
    with sessions() as session:
        found = gate.record(session, "yalda_sale", "2026-12-20T10:00")
        assert found is not None and found.approved_by == gate.FILE_APPROVAL


def test_three_time_zones_with_spread_each_customer_at_their_own_ten(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    ids = add_customers(sessions, 300)
    sale = rule(at="2026-12-20T10:00", spread="3h", approved=True)
    clock = FixedClock(utc(2026, 12, 19, 8))
    with sessions.begin() as session:
        plan(session, [sale], clock, settings)
    rows = ledger(sessions)
    assert len(rows) == len(ids)
    offsets = []
    for row in rows:
        zone = ZoneInfo(ZONES[ids.index(row.customer_id) % 3])
        start = AT.replace(tzinfo=zone)
        offset = row.due_at - start
        assert timedelta(0) <= offset < timedelta(hours=3)
        assert row.scheduled_for == row.due_at
        assert row.expires_at == row.due_at + timedelta(hours=12)
        assert row.occurrence_key == "2026-12-20T10:00"
        offsets.append(offset)
    # Evenly over the span: each half hour of the three gets about a sixth.
    halves = Counter(int(offset / timedelta(minutes=30)) for offset in offsets)
    assert set(halves) == set(range(6))
    assert all(25 <= count <= 75 for count in halves.values()), halves
    # Deterministic per customer: a second planner computes the same times.
    with sessions.begin() as session:
        session.execute(delete(Message))
        session.execute(delete(Announcement))
        plan(session, [sale], clock, settings)
    assert {(r.customer_id, r.due_at) for r in ledger(sessions)} == {
        (r.customer_id, r.due_at) for r in rows
    }


def test_shop_timezone_is_one_instant_everywhere(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    add_customers(sessions, 6)
    clock = FixedClock(utc(2026, 12, 19, 8))
    sale = rule(at="2026-12-20T10:00", timezone="shop", approved=True)
    with sessions.begin() as session:
        plan(session, [sale], clock, settings)
    tehran_ten = AT.replace(tzinfo=ZoneInfo("Asia/Tehran"))
    assert {row.due_at for row in ledger(sessions)} == {tehran_ten}


def test_the_daemon_sends_each_zone_at_its_own_ten_spread_over_three_hours(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    ids = add_customers(sessions, 90)
    write_announcement(settings, 'at = "2026-03-21T10:00"\nspread = "3h"\napproved = true\n')
    sent = run_daemon_loop(settings, sessions, utc(2026, 3, 20, 20), 1)
    assert sorted(s.customer_id for s in sent) == sorted(f"c{n}" for n in range(90))
    for zone_index, zone_name in enumerate(ZONES):
        zone = ZoneInfo(zone_name)
        ten = datetime(2026, 3, 21, 10, tzinfo=zone)
        times = []
        for message in sent:
            n = int(message.customer_id[1:])
            if n % 3 != zone_index:
                continue
            due = ten + timedelta(seconds=spread_offset("yalda_sale", ids[n], 3 * 3600))
            assert due <= message.at < due + TICK, (zone_name, message)
            times.append(message.at)
        assert max(times) - min(times) > timedelta(hours=2)


def test_queueing_on_sqlite_gives_the_connection_its_usual_cache_back(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    add_customers(sessions, 3)
    with sessions.begin() as session:
        if session.get_bind().dialect.name != "sqlite":
            return
        before = session.scalar(text("PRAGMA cache_size"))
        report = plan(
            session,
            [rule(at="2026-12-20T10:00", approved=True)],
            FixedClock(utc(2026, 12, 19, 8)),
            settings,
        )
        assert report.rules["yalda_sale"].planned == 3
        assert session.scalar(text("PRAGMA cache_size")) == before
