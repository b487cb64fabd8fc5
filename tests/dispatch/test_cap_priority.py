"""Caps honour priority within the recipient's day: a message does not take the last slot
that a higher-priority message for the same phone will want later that day."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from conftest import CaptureGateway
from dispatch_helpers import (
    TRANSACTIONAL,
    ScriptedGateway,
    add_customer,
    make_dispatcher,
    policies,
    queue,
    row,
    with_sending,
)
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.config import SendWindow, Settings
from campaigner.db import create_engine_for, session_factory
from campaigner.db.models import Customer, Message
from campaigner.optouts import add_opt_outs
from campaigner.policy import RulePolicy

# Sunday 22 March 2026 in Tehran (UTC+03:30).
NINE = datetime(2026, 3, 22, 5, 30, tzinfo=UTC)
TEN = NINE + timedelta(hours=1)
NEXT_NINE = NINE + timedelta(days=1)


def state(sessions: sessionmaker[Session], message_id: int) -> tuple[str, str | None, datetime]:
    stored = row(sessions, message_id)
    return stored.status, stored.reason, stored.scheduled_for


@pytest.fixture
def at_nine(clock: FixedClock) -> FixedClock:
    clock.set(NINE)
    return clock


def test_a_thank_you_waits_for_the_birthday_due_later_that_day(
    sessions: sessionmaker[Session], at_nine: FixedClock, settings: Settings
) -> None:
    customer = add_customer(sessions)
    thanks = queue(sessions, customer, NINE, rule="thank_you", priority=50)
    birthday = queue(sessions, customer, TEN, rule="birthday", priority=80)
    gateway = ScriptedGateway()
    with make_dispatcher(sessions, gateway, at_nine, settings) as dispatcher:
        report = dispatcher.dispatch_once()
        assert (report.sent, report.deferred) == (0, 1)
        assert state(sessions, thanks) == ("queued", "cap_priority", TEN)
        at_nine.set(TEN)
        report = dispatcher.dispatch_once()
        assert (report.sent, report.deferred) == (1, 1)
        assert [m.id for m in gateway.sent] == [birthday]
        # The birthday took the day; the thank-you goes the next morning, within its 3 days.
        assert state(sessions, thanks) == ("queued", "cap_priority", NEXT_NINE)
        at_nine.set(NEXT_NINE)
        assert dispatcher.dispatch_once().sent == 1
    assert [m.id for m in gateway.sent] == [birthday, thanks]


def test_a_message_that_cannot_wait_for_the_next_day_is_skipped_with_cap_priority(
    sessions: sessionmaker[Session], at_nine: FixedClock, settings: Settings
) -> None:
    customer = add_customer(sessions)
    thanks = queue(sessions, customer, NINE, priority=50, lateness=timedelta(hours=12))
    queue(sessions, customer, TEN, rule="birthday", priority=80)
    with make_dispatcher(sessions, ScriptedGateway(), at_nine, settings) as dispatcher:
        dispatcher.dispatch_once()
        at_nine.set(TEN)
        report = dispatcher.dispatch_once()
    assert report.sent == 1 and report.skipped == {"cap_priority": 1}
    assert state(sessions, thanks)[:2] == ("skipped", "cap_priority")


def test_a_rival_due_after_the_message_expires_wins_at_once(
    sessions: sessionmaker[Session], at_nine: FixedClock, settings: Settings
) -> None:
    customer = add_customer(sessions)
    thanks = queue(sessions, customer, NINE, priority=50, lateness=timedelta(minutes=30))
    queue(sessions, customer, TEN, rule="birthday", priority=80)
    with make_dispatcher(sessions, ScriptedGateway(), at_nine, settings) as dispatcher:
        assert dispatcher.dispatch_once().skipped == {"cap_priority": 1}
    assert state(sessions, thanks)[:2] == ("skipped", "cap_priority")


def test_equal_priority_keeps_the_older_due_time_first(
    sessions: sessionmaker[Session], at_nine: FixedClock, settings: Settings
) -> None:
    customer = add_customer(sessions)
    first = queue(sessions, customer, NINE, rule="thank_you", priority=50)
    second = queue(sessions, customer, TEN, rule="referral_request", priority=50)
    gateway = ScriptedGateway()
    with make_dispatcher(sessions, gateway, at_nine, settings) as dispatcher:
        assert dispatcher.dispatch_once().sent == 1
        at_nine.set(TEN)
        assert dispatcher.dispatch_once().deferred == 1
    assert [m.id for m in gateway.sent] == [first]
    assert state(sessions, second) == ("queued", "cap", NEXT_NINE)


def test_transactional_messages_never_wait_and_are_never_waited_for(
    sessions: sessionmaker[Session], at_nine: FixedClock, settings: Settings
) -> None:
    customer = add_customer(sessions)
    shipped = queue(sessions, customer, NINE, rule=next(iter(TRANSACTIONAL)), priority=0)
    thanks = queue(sessions, customer, NINE, rule="thank_you", priority=50)
    queue(sessions, customer, TEN, rule=next(iter(TRANSACTIONAL)), priority=99)
    queue(sessions, customer, TEN, rule="birthday", priority=80)
    gateway = ScriptedGateway()
    with make_dispatcher(sessions, gateway, at_nine, settings) as dispatcher:
        report = dispatcher.dispatch_once()
    # The order notice goes whatever marketing waits; the thank-you gives way only to the
    # birthday (the later order notice takes no slot).
    assert [m.id for m in gateway.sent] == [shipped]
    assert (report.sent, report.deferred) == (1, 1)
    assert state(sessions, thanks) == ("queued", "cap_priority", TEN)


def test_a_lower_priority_message_goes_the_same_day_when_its_rival_expires(
    sessions: sessionmaker[Session], at_nine: FixedClock, settings: Settings
) -> None:
    customer = add_customer(sessions)
    thanks = queue(sessions, customer, NINE, priority=50)
    birthday = queue(sessions, customer, TEN, rule="birthday", priority=80, lateness=timedelta(0))
    gateway = ScriptedGateway()
    with make_dispatcher(sessions, gateway, at_nine, settings) as dispatcher:
        assert dispatcher.dispatch_once().deferred == 1
        # Dispatch stalls past the birthday's last moment (the gateway was down, say).
        at_nine.set(TEN + timedelta(minutes=20))
        report = dispatcher.dispatch_once()
    assert (report.expired, report.sent) == (1, 1)
    assert row(sessions, birthday).status == "expired"
    assert [m.id for m in gateway.sent] == [thanks]


def test_a_lower_priority_message_goes_the_same_day_when_its_rival_is_skipped(
    sessions: sessionmaker[Session], at_nine: FixedClock, settings: Settings
) -> None:
    # Two customers share one phone (a family number): caps count the phone.
    parent = add_customer(sessions, phone="+989121234567")
    child = add_customer(sessions, phone="+989121234567")
    thanks = queue(sessions, parent, NINE, priority=50)
    birthday = queue(sessions, child, TEN, rule="birthday", priority=80)
    gateway = ScriptedGateway()
    with make_dispatcher(sessions, gateway, at_nine, settings) as dispatcher:
        assert dispatcher.dispatch_once().deferred == 1
        with sessions.begin() as session:
            session.get_one(Customer, child).marketing_consent = False
        at_nine.set(TEN)
        report = dispatcher.dispatch_once()
    assert report.skipped == {"no_consent": 1}
    assert row(sessions, birthday).reason == "no_consent"
    assert [m.id for m in gateway.sent] == [thanks]


def test_an_opt_out_settles_both_at_once(
    sessions: sessionmaker[Session], at_nine: FixedClock, settings: Settings
) -> None:
    customer = add_customer(sessions, phone="+989121110002")
    thanks = queue(sessions, customer, NINE, priority=50)
    queue(sessions, customer, TEN, rule="birthday", priority=80)
    with make_dispatcher(sessions, ScriptedGateway(), at_nine, settings) as dispatcher:
        dispatcher.dispatch_once()
        with sessions.begin() as session:
            add_opt_outs(session, ["+989121110002"], NINE)
        at_nine.set(TEN)
        assert dispatcher.dispatch_once().skipped == {"opted_out": 2}
    assert state(sessions, thanks)[:2] == ("skipped", "opted_out")


def test_the_weekly_cap_is_left_for_the_birthday_too(
    sessions: sessionmaker[Session], at_nine: FixedClock, settings: Settings
) -> None:
    settings = with_sending(settings, max_per_day=0, max_per_week=2)
    customer = add_customer(sessions)
    gateway = ScriptedGateway()
    with make_dispatcher(sessions, gateway, at_nine, settings) as dispatcher:
        at_nine.set(NINE - timedelta(days=2))
        earlier = queue(sessions, customer, at_nine.now(), rule="win_back")
        assert dispatcher.dispatch_once().sent == 1
        at_nine.set(NINE)
        thanks = queue(sessions, customer, NINE, priority=50, lateness=timedelta(days=7))
        birthday = queue(sessions, customer, TEN, rule="birthday", priority=80)
        assert dispatcher.dispatch_once().deferred == 1
        assert row(sessions, thanks).reason == "cap_priority"
        at_nine.set(TEN)
        assert dispatcher.dispatch_once().sent == 1
    assert [m.id for m in gateway.sent] == [earlier, birthday]
    # The week is full until the win-back of the 20th leaves the count, on the 27th at 09:00.
    assert state(sessions, thanks) == ("queued", "cap_priority", NINE + timedelta(days=5))


def test_a_rival_deferred_by_its_own_window_in_the_same_batch_keeps_its_slot(
    sessions: sessionmaker[Session], at_nine: FixedClock, settings: Settings
) -> None:
    def late_birthdays(rule: str) -> RulePolicy:
        if rule == "birthday":
            return RulePolicy(window=SendWindow.parse("12:00-20:00"))
        return policies(rule)

    customer = add_customer(sessions)
    birthday = queue(sessions, customer, NINE, rule="birthday", priority=80)
    thanks = queue(sessions, customer, NINE, priority=50)
    gateway = ScriptedGateway()
    with make_dispatcher(
        sessions, gateway, at_nine, settings, policies=late_birthdays
    ) as dispatcher:
        assert dispatcher.dispatch_once().deferred == 2
        noon = NINE + timedelta(hours=3)
        assert row(sessions, birthday).scheduled_for == noon
        assert state(sessions, thanks) == ("queued", "cap_priority", noon)
        at_nine.set(noon)
        assert dispatcher.dispatch_once().sent == 1
    assert [m.id for m in gateway.sent] == [birthday]


def test_a_rival_held_by_another_dispatcher_takes_the_slot_it_was_waited_for(
    sessions: sessionmaker[Session], at_nine: FixedClock, settings: Settings
) -> None:
    customer = add_customer(sessions)
    thanks = queue(sessions, customer, NINE, priority=50)
    birthday = queue(sessions, customer, TEN, rule="birthday", priority=80)
    gateway = ScriptedGateway()
    with make_dispatcher(sessions, gateway, at_nine, settings) as dispatcher:
        dispatcher.dispatch_once()
        at_nine.set(TEN)
        with sessions.begin() as session:  # another dispatcher's claim on the birthday
            session.execute(
                update(Message)
                .where(Message.id == birthday)
                .values(claim="theirs", lease_until=TEN + timedelta(minutes=2))
            )
        assert dispatcher.dispatch_once().deferred == 1
    assert gateway.sent == []
    assert state(sessions, thanks) == ("queued", "cap_priority", NEXT_NINE)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_racing_dispatchers_send_each_phone_its_birthday_and_nothing_else_that_day(
    db_url: str, sessions: sessionmaker[Session], clock: FixedClock, settings: Settings
) -> None:
    phones = 150
    thanks, birthdays = set(), set()
    for _ in range(phones):
        customer = add_customer(sessions)
        thanks.add(queue(sessions, customer, NINE, priority=50))
        birthdays.add(queue(sessions, customer, TEN, rule="birthday", priority=80))
    settings = with_sending(settings, batch_size=20)
    gateway = CaptureGateway()
    clock.set(NINE)
    start = threading.Barrier(2)

    def run() -> None:
        engine = create_engine_for(db_url)
        dispatcher = make_dispatcher(session_factory(engine), gateway, clock, settings)
        start.wait()
        with dispatcher:
            dispatcher.drain()
        engine.dispose()

    for moment in (NINE, TEN):
        clock.set(moment)
        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    sent = Counter(message.phone for message in gateway.sent)
    assert set(sent.values()) == {1} and len(sent) == phones
    assert {message.id for message in gateway.sent} == birthdays
    for message_id in thanks:
        assert state(sessions, message_id) == ("queued", "cap_priority", NEXT_NINE)
