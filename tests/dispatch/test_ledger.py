"""The dispatcher's ledger writes: claim, start, record, release, expire, and who may do each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dispatch_helpers import add_customer, queue, row
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from secret_forms import USERNAME, echo_of, encodings, storable_secrets
from sqlalchemy import text, update
from sqlalchemy.orm import Session, sessionmaker

from campaigner.db.models import Message, MessageStatus
from campaigner.dispatch.ledger import (
    claim_due,
    expire_leases,
    failed,
    release,
    start_sending,
    write_claimed,
    write_results,
    write_unknown,
)
from campaigner.masking import register_secret, registry

NOW = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)
LEASE = NOW + timedelta(minutes=2)
LATER = LEASE + timedelta(seconds=1)


def claim(
    sessions: sessionmaker[Session], token: str, limit: int = 10, now: datetime = NOW
) -> list[int]:
    return claim_due(sessions, now, limit, claim=token, lease_until=now + timedelta(minutes=2))


def start(
    sessions: sessionmaker[Session], token: str, ids: list[int], now: datetime = NOW
) -> set[int]:
    with sessions.begin() as session:
        return start_sending(
            session,
            ids,
            now,
            claim=token,
            gateway="kannel",
            lease_until=now + timedelta(minutes=2),
        )


def test_claim_takes_due_queued_rows_by_priority_then_due_time_and_leaves_them_queued(
    sessions: sessionmaker[Session],
) -> None:
    customer = add_customer(sessions)
    old = queue(sessions, customer, NOW - timedelta(hours=2))
    urgent = queue(sessions, customer, NOW - timedelta(minutes=1), priority=5)
    recent = queue(sessions, customer, NOW - timedelta(hours=1))
    queue(sessions, customer, NOW + timedelta(minutes=1))  # not due yet
    held = queue(sessions, customer, NOW - timedelta(hours=3))
    with sessions.begin() as session:
        session.execute(update(Message).where(Message.id == held).values(status="skipped"))

    first = claim(sessions, "a", 2)
    assert sorted(first) == sorted([urgent, old])
    assert claim(sessions, "b") == [recent]
    assert claim(sessions, "c") == []
    claimed = row(sessions, urgent)
    assert (claimed.status, claimed.claim, claimed.gateway) == (MessageStatus.QUEUED, "a", None)
    assert (claimed.lease_until, claimed.attempts) == (LEASE, 0)
    assert row(sessions, held).status == MessageStatus.SKIPPED


def test_a_lapsed_claim_is_claimable_again_and_the_slow_claimant_can_no_longer_start_it(
    sessions: sessionmaker[Session],
) -> None:
    customer = add_customer(sessions)
    ids = [queue(sessions, customer, NOW - timedelta(minutes=5)) for _ in range(3)]
    assert sorted(claim(sessions, "slow")) == ids
    assert claim(sessions, "other", now=LEASE) == []  # the lease still holds at its last instant

    assert sorted(claim(sessions, "quick", now=LATER)) == ids  # untouched: still queued
    assert start(sessions, "slow", ids, now=NOW + timedelta(seconds=30)) == set()
    assert start(sessions, "quick", ids[:2], now=LATER) == set(ids[:2])
    assert {row(sessions, i).status for i in ids[:2]} == {MessageStatus.SENDING}
    # Started rows are no longer claimable; the unstarted one waits for its own lease.
    assert claim(sessions, "third", now=LATER) == []


def test_start_sending_refuses_rows_whose_lease_lapsed(sessions: sessionmaker[Session]) -> None:
    message_id = queue(sessions, add_customer(sessions), NOW)
    claim(sessions, "a")
    assert start(sessions, "a", [message_id], now=LATER) == set()
    assert row(sessions, message_id).status == MessageStatus.QUEUED


def test_results_land_only_on_rows_this_claim_started(sessions: sessionmaker[Session]) -> None:
    customer = add_customer(sessions)
    ids = [queue(sessions, customer, NOW - timedelta(minutes=10 - n)) for n in range(4)]
    claim(sessions, "mine")
    start(sessions, "mine", ids[:2])
    sent = [
        {"id": row_id, "status": MessageStatus.SENT, "provider_id": f"p{row_id}", "claim": None}
        for row_id in ids
    ]
    with sessions.begin() as session:
        write_results(session, "someone-else", sent)
    assert {row(sessions, i).status for i in ids} == {MessageStatus.SENDING, MessageStatus.QUEUED}
    with sessions.begin() as session:
        write_results(session, "mine", sent)
    assert [row(sessions, i).status for i in ids] == ["sent", "sent", "queued", "queued"]
    assert row(sessions, ids[0]).provider_id == f"p{ids[0]}"
    assert row(sessions, ids[2]).provider_id is None  # claimed, never started: not written


def test_claimed_rows_take_verdicts_and_texts_only_until_they_start(
    sessions: sessionmaker[Session],
) -> None:
    customer = add_customer(sessions)
    waiting, started = (queue(sessions, customer, NOW) for _ in range(2))
    claim(sessions, "mine")
    start(sessions, "mine", [started])
    texts = [{"id": i, "text": "سلام سارا", "segments": 1} for i in (waiting, started)]
    with sessions.begin() as session:
        write_claimed(session, "mine", texts)
        write_claimed(session, "theirs", [{"id": waiting, "status": MessageStatus.SKIPPED}])
    assert row(sessions, waiting).text == "سلام سارا"
    assert row(sessions, waiting).status == MessageStatus.QUEUED
    assert row(sessions, started).text is None


def test_a_late_answer_still_settles_a_row_that_turned_unknown(
    sessions: sessionmaker[Session],
) -> None:
    message_id = queue(sessions, add_customer(sessions), NOW)
    claim(sessions, "slow")
    start(sessions, "slow", [message_id])
    assert expire_leases(sessions, LATER) == 1
    assert (row(sessions, message_id).status, row(sessions, message_id).reason) == (
        "unknown",
        "lease_expired",
    )
    with sessions.begin() as session:
        write_results(session, "slow", [{"id": message_id, "status": MessageStatus.SENT}])
    assert row(sessions, message_id).status == MessageStatus.SENT


def test_expiry_turns_only_started_rows_unknown_and_release_frees_claimed_ones(
    sessions: sessionmaker[Session],
) -> None:
    customer = add_customer(sessions)
    ids = [queue(sessions, customer, NOW) for _ in range(5)]
    claim(sessions, "crashed")
    start(sessions, "crashed", ids[:1])
    assert expire_leases(sessions, LATER) == 1
    assert [row(sessions, i).status for i in ids] == ["unknown"] + ["queued"] * 4
    assert {row(sessions, i).attempts for i in ids} == {0}

    claim(sessions, "next", now=LATER)
    assert release(sessions, "someone-else", ids, LATER) == 0
    assert release(sessions, "next", ids, LATER) == 4
    freed = row(sessions, ids[1])
    assert (freed.status, freed.claim, freed.lease_until) == ("queued", None, None)


def test_settling_unknown_rows_never_overwrites_a_row_settled_first(
    sessions: sessionmaker[Session],
) -> None:
    customer = add_customer(sessions)
    lost, answered = (queue(sessions, customer, NOW) for _ in range(2))
    with sessions.begin() as session:
        session.execute(update(Message).values(status=MessageStatus.UNKNOWN))
        session.execute(update(Message).where(Message.id == answered).values(status="sent"))
        write_unknown(
            session, [{"id": i, "status": MessageStatus.FAILED} for i in (lost, answered)]
        )
    assert (row(sessions, lost).status, row(sessions, answered).status) == ("failed", "sent")


def test_writing_nothing(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        write_results(session, "mine", [])
        assert (
            start_sending(session, [], NOW, claim="mine", gateway="kannel", lease_until=LEASE)
            == set()
        )
    assert release(sessions, "mine", [], NOW) == 0


@given(secret=storable_secrets)
@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_secret_is_masked_before_it_reaches_last_error(
    secret: str, sessions: sessionmaker[Session]
) -> None:
    """Issue 13: an echoing gateway put the encoded Kannel password into last_error."""
    message_id = queue(sessions, add_customer(sessions), NOW)
    assert claim(sessions, "echo") == [message_id]
    assert start(sessions, "echo", [message_id]) == {message_id}
    saved = registry.snapshot()
    register_secret(secret, username=USERNAME)
    try:
        with sessions.begin() as session:
            write_results(session, "echo", [failed(message_id, "rejected", echo_of(secret), NOW)])
    finally:
        registry.restore(saved)
    with sessions() as session:  # plain SQL: the column as the database holds it
        stored = session.execute(
            text("SELECT last_error FROM messages WHERE id = :id"), {"id": message_id}
        ).scalar_one()
    assert stored.startswith("GET /cgi-bin/sendsms?password=")
    for name, form in encodings(secret).items():
        assert form not in stored, name
