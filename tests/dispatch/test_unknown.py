"""Settling `unknown` rows by hand: what each answer does, and what it never overwrites."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from dispatch_helpers import ScriptedGateway, add_customer, make_dispatcher, queue, row
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.db.models import Message, MessageStatus
from campaigner.dispatch.ledger import write_results
from campaigner.dispatch.unknown import Resolution, Selection, resolve_unknown, unknown_messages

MORNING = datetime(2026, 3, 22, 6, 30, tzinfo=UTC)  # 10:00 in Tehran
LOST_AT = MORNING - timedelta(hours=3)


def lost(
    sessions: sessionmaker[Session], rule: str = "thank_you", since: datetime = LOST_AT
) -> int:
    """A row whose request was in flight when its dispatcher died."""
    message_id = queue(sessions, add_customer(sessions), since - timedelta(minutes=2), rule=rule)
    with sessions.begin() as session:
        session.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(
                status=MessageStatus.UNKNOWN,
                reason="lease_expired",
                claim="dead",
                gateway="kannel",
                text="سلام سارا",
                updated_at=since,
            )
        )
    return message_id


def settle(
    sessions: sessionmaker[Session],
    resolution: Resolution,
    *ids: int,
    chosen: Selection | None = None,
) -> tuple[list[int], dict[int, str]]:
    selection = chosen or Selection(ids=ids)
    settled = resolve_unknown(sessions, selection, resolution, by="ops-alice", now=MORNING)
    return settled.resolved, settled.left_alone


def test_sent_is_recorded_as_of_when_it_became_unknown(sessions: sessionmaker[Session]) -> None:
    message_id = lost(sessions)
    assert settle(sessions, Resolution.SENT, message_id) == ([message_id], {})
    message = row(sessions, message_id)
    assert (message.status, message.reason, message.sent_at) == ("sent", None, LOST_AT)
    assert (message.resolved_by, message.resolved_at) == ("ops-alice", MORNING)
    assert (message.claim, message.text) == (None, "سلام سارا")


def test_not_sent_fails_it_for_good(sessions: sessionmaker[Session]) -> None:
    message_id = lost(sessions)
    settle(sessions, Resolution.NOT_SENT, message_id)
    message = row(sessions, message_id)
    assert (message.status, message.reason, message.sent_at) == ("failed", "not_sent", None)
    assert message.resolved_by == "ops-alice"


def test_requeued_goes_out_once_under_the_sending_policy(
    sessions: sessionmaker[Session], clock: FixedClock, settings: Settings
) -> None:
    message_id = lost(sessions)
    settle(sessions, Resolution.REQUEUE, message_id)
    message = row(sessions, message_id)
    assert (message.status, message.reason, message.scheduled_for) == (
        "queued",
        "requeued",
        MORNING,
    )
    assert (message.claim, message.gateway, message.attempts) == (None, None, 0)
    clock.set(MORNING)
    gateway = ScriptedGateway()
    with make_dispatcher(sessions, gateway, clock, settings) as dispatcher:
        assert dispatcher.dispatch_once().sent == 1
        assert dispatcher.dispatch_once().claimed == 0
    assert [m.id for m in gateway.sent] == [message_id]
    assert row(sessions, message_id).resolved_by == "ops-alice"  # the record stays


def test_only_unknown_rows_change_and_the_others_are_named(
    sessions: sessionmaker[Session],
) -> None:
    unknown_id = lost(sessions)
    sent_id = lost(sessions)
    with sessions.begin() as session:
        # The original dispatcher's late answer arrived first.
        write_results(session, "dead", [{"id": sent_id, "status": MessageStatus.SENT}])
    resolved, left_alone = settle(sessions, Resolution.REQUEUE, unknown_id, sent_id, 999_999)
    assert resolved == [unknown_id]
    assert left_alone == {sent_id: "sent", 999_999: "no such message"}
    assert row(sessions, sent_id).status == "sent"


def test_select_by_rule_and_age(sessions: sessionmaker[Session]) -> None:
    old_thanks = lost(sessions, since=MORNING - timedelta(hours=5))
    recent_thanks = lost(sessions, since=MORNING - timedelta(minutes=30))
    old_birthday = lost(sessions, rule="birthday", since=MORNING - timedelta(hours=5))
    with sessions() as session:
        everything = unknown_messages(session, Selection(), MORNING)
        assert [m.id for m in everything] == [old_thanks, old_birthday, recent_thanks]
        chosen = Selection(rule="thank_you", older_than=timedelta(hours=2))
        assert [m.id for m in unknown_messages(session, chosen, MORNING)] == [old_thanks]
    resolved, _ = settle(sessions, Resolution.NOT_SENT, chosen=chosen)
    assert resolved == [old_thanks]
    assert {row(sessions, i).status for i in (recent_thanks, old_birthday)} == {"unknown"}


@pytest.mark.parametrize("resolution", list(Resolution))
def test_settling_twice_changes_nothing_the_second_time(
    sessions: sessionmaker[Session], resolution: Resolution
) -> None:
    message_id = lost(sessions)
    settle(sessions, resolution, message_id)
    first = row(sessions, message_id)
    assert settle(sessions, resolution, message_id) == ([], {message_id: first.status})
