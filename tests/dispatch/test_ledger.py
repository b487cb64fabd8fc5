"""The dispatcher's ledger writes: claiming in precedence order, updating rows by id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dispatch_helpers import add_customer, queue, row
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from secret_forms import USERNAME, echo_of, encodings, storable_secrets
from sqlalchemy import text, update
from sqlalchemy.orm import Session, sessionmaker

from campaigner.db.models import Message, MessageStatus
from campaigner.dispatch.ledger import claim_due, write_rows
from campaigner.masking import register_secret, registry

NOW = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)
LEASE = NOW + timedelta(minutes=2)


def test_claim_takes_due_queued_rows_by_priority_then_due_time(
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

    first = claim_due(sessions, NOW, 2, gateway="console", lease_until=LEASE)
    assert sorted(first) == sorted([urgent, old])
    rest = claim_due(sessions, NOW, 10, gateway="console", lease_until=LEASE)
    assert rest == [recent]
    assert claim_due(sessions, NOW, 10, gateway="console", lease_until=LEASE) == []
    claimed = row(sessions, urgent)
    assert (claimed.status, claimed.gateway) == (MessageStatus.SENDING, "console")
    assert (claimed.lease_until, claimed.updated_at) == (LEASE, NOW)
    assert row(sessions, held).status == MessageStatus.SKIPPED


def test_write_rows_sets_each_rows_own_values_only_while_in_flight(
    sessions: sessionmaker[Session],
) -> None:
    customer = add_customer(sessions)
    ids = [queue(sessions, customer, NOW - timedelta(minutes=10 - n)) for n in range(5)]
    claim_due(sessions, NOW, 4, gateway="console", lease_until=LEASE)
    late = NOW + timedelta(seconds=30)
    sent = [
        {"id": row_id, "status": MessageStatus.SENT, "provider_id": f"p{row_id}"}
        | {"sent_at": late, "lease_until": None, "attempts": n, "updated_at": late}
        for n, row_id in enumerate(ids[:2], start=1)
    ]
    failed = {"id": ids[2], "status": MessageStatus.FAILED, "reason": "rejected"}
    failed |= {"last_error": "سلام: شماره نامعتبر", "lease_until": None, "updated_at": late}
    queued = {"id": ids[4], "status": MessageStatus.SENT, "provider_id": "never"}
    with sessions.begin() as session:
        write_rows(session, [*sent, failed, queued])

    for n, row_id in enumerate(ids[:2], start=1):
        message = row(sessions, row_id)
        assert (message.status, message.provider_id) == (MessageStatus.SENT, f"p{row_id}")
        assert (message.sent_at, message.attempts, message.lease_until) == (late, n, None)
    message = row(sessions, ids[2])
    assert (message.status, message.reason) == (MessageStatus.FAILED, "rejected")
    assert message.last_error == "سلام: شماره نامعتبر"
    assert row(sessions, ids[3]).status == MessageStatus.SENDING
    untouched = row(sessions, ids[4])  # still queued: never claimed, so never written
    assert (untouched.status, untouched.provider_id) == (MessageStatus.QUEUED, None)


def test_write_rows_with_nothing_to_write(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        write_rows(session, [])


@given(secret=storable_secrets)
@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_secret_is_masked_before_it_reaches_last_error(
    secret: str, sessions: sessionmaker[Session]
) -> None:
    """Issue 13: an echoing gateway put the encoded Kannel password into last_error."""
    message_id = queue(sessions, add_customer(sessions), NOW)
    claim_due(sessions, NOW, 10, gateway="kannel", lease_until=LEASE)
    saved = registry.snapshot()
    register_secret(secret, username=USERNAME)
    try:
        with sessions.begin() as session:
            write_rows(session, [{"id": message_id, "last_error": echo_of(secret)}])
    finally:
        registry.restore(saved)
    with sessions() as session:  # plain SQL: the column as the database holds it
        stored = session.execute(
            text("SELECT last_error FROM messages WHERE id = :id"), {"id": message_id}
        ).scalar_one()
    assert stored.startswith("GET /cgi-bin/sendsms?password=")
    for name, form in encodings(secret).items():
        assert form not in stored, name
