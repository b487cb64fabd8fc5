"""Withdrawing an announcement: disabling or deleting its file before its time, or during
its spread, cancels what is still queued (`cancelled`, `rule_withdrawn`); a row a dispatcher
holds is left alone, and a cancelled row is never sent, even racing the dispatcher."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

from announcement_shop import add_customers, ledger, utc, write_announcement
from conftest import CaptureGateway
from sqlalchemy.orm import Session, sessionmaker

from campaigner.announcements.withdraw import withdraw
from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.db.models import MessageStatus
from campaigner.dispatch.ledger import claim_due
from campaigner.runtime import Runtime

APPROVED = 'at = "2026-12-20T10:00"\napproved = true\n'
BEFORE = utc(2026, 12, 19, 8)  # the day before
TEN_IN_TEHRAN = utc(2026, 12, 20, 6, 30)


def build(settings: Settings, sessions: sessionmaker[Session], clock: FixedClock) -> Runtime:
    return Runtime.build(settings, clock=clock, sessions=sessions, gateway=CaptureGateway())


def statuses(sessions: sessionmaker[Session]) -> Counter[tuple[str, str | None]]:
    return Counter((row.status, row.reason) for row in ledger(sessions))


def test_disabling_the_file_before_its_time_cancels_everything_queued(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    add_customers(sessions, 4, zones=("Asia/Tehran",))
    path = write_announcement(settings, APPROVED)
    clock = FixedClock(BEFORE)
    runtime = build(settings, sessions, clock)
    runtime.plan()
    assert statuses(sessions) == {("queued", None): 4}
    path.write_text(path.read_text(encoding="utf-8") + "enabled = false\n", encoding="utf-8")
    runtime.rulebook.reload()
    report = runtime.plan()
    assert report.cancelled == 4
    assert statuses(sessions) == {("cancelled", "rule_withdrawn"): 4}
    clock.set(TEN_IN_TEHRAN + timedelta(minutes=5))
    runtime.plan()
    runtime.drain()
    assert runtime.gateway.sent == []  # type: ignore[attr-defined]
    runtime.close()


def test_deleting_the_file_during_its_spread_cancels_the_rest(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    add_customers(sessions, 60, zones=("Asia/Tehran",))
    path = write_announcement(settings, APPROVED + 'spread = "3h"\n')
    clock = FixedClock(BEFORE)
    runtime = build(settings, sessions, clock)
    runtime.plan()
    clock.set(TEN_IN_TEHRAN + timedelta(hours=1))
    runtime.drain()
    sent_first = len(runtime.gateway.sent)  # type: ignore[attr-defined]
    assert 0 < sent_first < 60
    path.unlink()
    runtime.rulebook.reload()
    runtime.plan()
    clock.set(TEN_IN_TEHRAN + timedelta(hours=4))
    runtime.plan()
    runtime.drain()
    assert len(runtime.gateway.sent) == sent_first  # type: ignore[attr-defined]
    assert statuses(sessions) == {
        ("sent", None): sent_first,
        ("cancelled", "rule_withdrawn"): 60 - sent_first,
    }
    withdrawn_at = TEN_IN_TEHRAN + timedelta(hours=1)
    assert all(row.due_at <= withdrawn_at for row in ledger(sessions) if row.status == "sent")
    runtime.close()


def test_a_claimed_row_is_not_cancelled_and_a_cancelled_row_is_never_claimed(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    add_customers(sessions, 4, zones=("Asia/Tehran",))
    write_announcement(settings, APPROVED)
    clock = FixedClock(TEN_IN_TEHRAN)
    runtime = build(settings, sessions, clock)
    runtime.plan()
    now = clock.now()
    held = claim_due(sessions, now, 1, claim="other", lease_until=now + timedelta(minutes=2))
    with sessions.begin() as session:
        assert withdraw(session, [], now) == 3
    rows = {row.id: row for row in ledger(sessions)}
    assert [rows[held[0]].status, rows[held[0]].claim] == ["queued", "other"]
    assert claim_due(sessions, now, 10, claim="mine", lease_until=now + timedelta(minutes=2)) == []
    # Once its lease lapses unused, the next pass cancels it too.
    later = now + timedelta(minutes=3)
    with sessions.begin() as session:
        assert withdraw(session, [], later) == 1
    assert statuses(sessions) == {("cancelled", "rule_withdrawn"): 4}
    runtime.close()


def test_withdrawing_while_dispatchers_send_never_sends_a_cancelled_row(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    """The dispatcher drains while another thread withdraws the announcement over and over:
    every row ends sent or cancelled, and nothing cancelled reached the gateway."""
    add_customers(sessions, 150, zones=("Asia/Tehran",))
    settings.sending.batch_size = 10
    write_announcement(settings, APPROVED)
    clock = FixedClock(TEN_IN_TEHRAN)
    runtime = build(settings, sessions, clock)
    runtime.plan()
    first_batch = threading.Event()
    done = threading.Event()

    def withdraw_repeatedly() -> None:
        first_batch.wait(30)
        while not done.is_set():
            with sessions.begin() as session:
                withdraw(session, [], clock.now())

    other = threading.Thread(target=withdraw_repeatedly)
    other.start()
    try:
        runtime.drain(after_batch=lambda _report: first_batch.set())
    finally:
        done.set()
        other.join()
    with sessions.begin() as session:
        withdraw(session, [], clock.now() + timedelta(minutes=5))
    rows = ledger(sessions)
    sent_ids = [message.id for message in runtime.gateway.sent]  # type: ignore[attr-defined]
    by_status = Counter(row.status for row in rows)
    assert len(rows) == 150
    assert set(by_status) <= {MessageStatus.SENT, MessageStatus.CANCELLED}, by_status
    assert len(sent_ids) == len(set(sent_ids)) >= 10
    assert set(sent_ids) == {row.id for row in rows if row.status == MessageStatus.SENT}
    runtime.close()
