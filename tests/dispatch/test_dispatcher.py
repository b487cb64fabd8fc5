from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from dispatch_helpers import (
    TRANSACTIONAL,
    FakeRenderer,
    ScriptedGateway,
    add_customer,
    make_dispatcher,
    queue,
    row,
    with_sending,
)
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.config import GatewaySettings, Settings
from campaigner.db.models import Customer, Message, OptOut
from campaigner.dispatch import CircuitState, Rendered
from campaigner.gateways.base import DeliveryReport, GatewayError, OutgoingMessage, SendResult
from campaigner.optouts import add_opt_outs
from campaigner.policy import RulePolicy

# Sunday 22 March 2026, 10:00 in Tehran (UTC+03:30).
MORNING = datetime(2026, 3, 22, 6, 30, tzinfo=UTC)


@pytest.fixture
def at_morning(clock: FixedClock) -> FixedClock:
    clock.set(MORNING)
    return clock


def test_sends_a_due_message_and_records_the_provider_id(
    sessions: sessionmaker[Session], at_morning: FixedClock, settings: Settings
) -> None:
    settings = settings.model_copy(
        update={"gateway": GatewaySettings(name="scripted", sender="3000123")}
    )
    gateway = ScriptedGateway()
    message_id = queue(sessions, add_customer(sessions), MORNING - timedelta(minutes=5))
    with make_dispatcher(sessions, gateway, at_morning, settings) as dispatcher:
        report = dispatcher.dispatch_once()
    assert (report.claimed, report.sent) == (1, 1)
    [sent] = gateway.sent
    assert sent.id == message_id and sent.sender == "3000123"
    stored = row(sessions, message_id)
    assert stored.status == "sent" and stored.provider_id == f"p-{message_id}"
    assert stored.sent_at == MORNING and stored.attempts == 1 and stored.lease_until is None
    assert (stored.text, stored.encoding, stored.segments) == ("Hi Sara, from thank_you", "gsm7", 1)


def test_not_yet_due_messages_wait(
    sessions: sessionmaker[Session], at_morning: FixedClock, settings: Settings
) -> None:
    message_id = queue(sessions, add_customer(sessions), MORNING + timedelta(minutes=1))
    with make_dispatcher(sessions, ScriptedGateway(), at_morning, settings) as dispatcher:
        assert dispatcher.dispatch_once().claimed == 0
    assert row(sessions, message_id).status == "queued"


def test_window_is_the_recipients_own(
    sessions: sessionmaker[Session], at_morning: FixedClock, settings: Settings
) -> None:
    tehran = queue(sessions, add_customer(sessions), MORNING)
    london = queue(sessions, add_customer(sessions, timezone="Europe/London"), MORNING)
    gateway = ScriptedGateway()
    with make_dispatcher(sessions, gateway, at_morning, settings) as dispatcher:
        report = dispatcher.dispatch_once()
        assert (report.sent, report.deferred) == (1, 1)
        assert [m.id for m in gateway.sent] == [tehran]
        waiting = row(sessions, london)
        # 06:30 in London (still GMT in March): waits for 09:00 there.
        assert waiting.status == "queued" and waiting.reason == "window"
        assert waiting.scheduled_for == datetime(2026, 3, 22, 9, 0, tzinfo=UTC)
        at_morning.set(datetime(2026, 3, 22, 9, 0, tzinfo=UTC))
        assert dispatcher.dispatch_once().sent == 1
    assert row(sessions, london).status == "sent"


def test_due_at_night_goes_out_at_nine_next_morning(
    sessions: sessionmaker[Session], clock: FixedClock, settings: Settings
) -> None:
    night = datetime(2026, 3, 22, 19, 30, tzinfo=UTC)  # 23:00 in Tehran
    clock.set(night)
    message_id = queue(sessions, add_customer(sessions), night)
    gateway = ScriptedGateway()
    with make_dispatcher(sessions, gateway, clock, settings) as dispatcher:
        assert dispatcher.dispatch_once().deferred == 1
        nine = datetime(2026, 3, 23, 5, 30, tzinfo=UTC)  # 09:00 in Tehran
        assert row(sessions, message_id).scheduled_for == nine
        clock.set(nine - timedelta(seconds=1))
        assert dispatcher.dispatch_once().claimed == 0
        clock.set(nine)
        assert dispatcher.dispatch_once().sent == 1
    assert [m.id for m in gateway.sent] == [message_id]


def test_expires_when_the_next_opening_is_too_late(
    sessions: sessionmaker[Session], clock: FixedClock, settings: Settings
) -> None:
    night = datetime(2026, 3, 22, 19, 30, tzinfo=UTC)
    clock.set(night)
    customer = add_customer(sessions)
    short = queue(sessions, customer, night, lateness=timedelta(hours=2), rule="flash_sale")
    stale = queue(sessions, customer, night - timedelta(days=4), rule="old")
    gateway = ScriptedGateway()
    with make_dispatcher(sessions, gateway, clock, settings) as dispatcher:
        assert dispatcher.dispatch_once().expired == 2
    assert (row(sessions, short).status, row(sessions, short).reason) == ("expired", "window")
    assert (row(sessions, stale).status, row(sessions, stale).reason) == ("expired", "late")
    assert gateway.sent == []


def test_caps_let_the_higher_priority_through_and_defer_the_other(
    sessions: sessionmaker[Session], at_morning: FixedClock, settings: Settings
) -> None:
    settings = with_sending(settings, max_per_day=1, max_per_week=3)
    customer = add_customer(sessions)
    low = queue(sessions, customer, MORNING - timedelta(hours=2), rule="win_back", priority=1)
    high = queue(sessions, customer, MORNING, rule="birthday", priority=5)
    gateway = ScriptedGateway()
    with make_dispatcher(sessions, gateway, at_morning, settings) as dispatcher:
        report = dispatcher.dispatch_once()
        assert (report.sent, report.deferred) == (1, 1)
        assert [m.id for m in gateway.sent] == [high]
        deferred = row(sessions, low)
        assert deferred.status == "queued" and deferred.reason == "cap"
        assert deferred.scheduled_for == datetime(2026, 3, 23, 5, 30, tzinfo=UTC)
        at_morning.set(deferred.scheduled_for)
        assert dispatcher.dispatch_once().sent == 1
    assert row(sessions, low).status == "sent"


def test_equal_priority_older_due_time_wins_and_late_loser_is_skipped(
    sessions: sessionmaker[Session], at_morning: FixedClock, settings: Settings
) -> None:
    customer = add_customer(sessions)
    newer = queue(sessions, customer, MORNING, rule="a", lateness=timedelta(hours=3))
    older = queue(sessions, customer, MORNING - timedelta(hours=1), rule="b")
    with make_dispatcher(sessions, ScriptedGateway(), at_morning, settings) as dispatcher:
        report = dispatcher.dispatch_once()
    assert report.skipped == {"cap": 1}
    assert row(sessions, older).status == "sent"
    assert (row(sessions, newer).status, row(sessions, newer).reason) == ("skipped", "cap")


def test_caps_count_earlier_sends_but_not_transactional_ones(
    sessions: sessionmaker[Session], at_morning: FixedClock, settings: Settings
) -> None:
    customer = add_customer(sessions)
    gateway = ScriptedGateway()
    with make_dispatcher(sessions, gateway, at_morning, settings) as dispatcher:
        shipped = queue(sessions, customer, MORNING, rule="order_shipped")
        assert dispatcher.dispatch_once().sent == 1
        marketing = queue(sessions, customer, MORNING, rule="thank_you")
        assert dispatcher.dispatch_once().sent == 1
        later = queue(sessions, customer, MORNING, rule="referral_request")
        assert dispatcher.dispatch_once().deferred == 1
        shipped_again = queue(sessions, customer, MORNING, rule="order_shipped")
        assert dispatcher.dispatch_once().sent == 1
    assert [m.id for m in gateway.sent] == [shipped, marketing, shipped_again]
    assert row(sessions, later).reason == "cap"


def test_weekly_cap_defers_until_the_oldest_send_leaves_the_week(
    sessions: sessionmaker[Session], at_morning: FixedClock, settings: Settings
) -> None:
    settings = with_sending(settings, max_per_day=0, max_per_week=2)
    customer = add_customer(sessions)
    with make_dispatcher(sessions, ScriptedGateway(), at_morning, settings) as dispatcher:
        for _ in range(2):
            queue(sessions, customer, MORNING)
            assert dispatcher.dispatch_once().sent == 1
            at_morning.advance(timedelta(days=1))
        third = queue(sessions, customer, at_morning.now(), lateness=timedelta(days=30))
        assert dispatcher.dispatch_once().deferred == 1
    # Sent on the 22nd and 23rd at 10:00; the 22nd leaves the 7-day count after 29th 10:00.
    assert row(sessions, third).scheduled_for == datetime(2026, 3, 29, 6, 30, 1, tzinfo=UTC)


def test_opt_out_after_queueing_and_missing_consent_send_nothing(
    sessions: sessionmaker[Session], at_morning: FixedClock, settings: Settings
) -> None:
    opted = add_customer(sessions, phone="+989121110000")
    queued_before = queue(sessions, opted, MORNING)
    no_consent = queue(sessions, add_customer(sessions, consent=False), MORNING)
    with sessions.begin() as session:
        add_opt_outs(session, ["+989121110000"], MORNING)
    gateway = ScriptedGateway()
    with make_dispatcher(sessions, gateway, at_morning, settings) as dispatcher:
        report = dispatcher.dispatch_once()
    assert report.skipped == {"opted_out": 1, "no_consent": 1}
    assert gateway.sent == []
    assert row(sessions, queued_before).reason == "opted_out"
    assert (row(sessions, no_consent).status, row(sessions, no_consent).reason) == (
        "skipped",
        "no_consent",
    )


def test_transactional_messages_need_no_marketing_consent_but_respect_opt_out(
    sessions: sessionmaker[Session], at_morning: FixedClock, settings: Settings
) -> None:
    rule = next(iter(TRANSACTIONAL))
    confirmed = queue(sessions, add_customer(sessions, consent=False), MORNING, rule=rule)
    opted = add_customer(sessions, phone="+989121110001", consent=False)
    refused = queue(sessions, opted, MORNING, rule=rule)
    with sessions.begin() as session:
        add_opt_outs(session, ["+989121110001"], MORNING)
    gateway = ScriptedGateway()
    with make_dispatcher(sessions, gateway, at_morning, settings) as dispatcher:
        report = dispatcher.dispatch_once()
    assert report.sent == 1 and report.skipped == {"opted_out": 1}
    assert [m.id for m in gateway.sent] == [confirmed]
    assert (row(sessions, refused).status, row(sessions, refused).reason) == (
        "skipped",
        "opted_out",
    )


def test_flagged_invalid_number_is_skipped(
    sessions: sessionmaker[Session], at_morning: FixedClock, settings: Settings
) -> None:
    customer = add_customer(sessions)
    with sessions.begin() as session:
        session.get_one(Customer, customer).phone_invalid_at = MORNING - timedelta(days=1)
    message_id = queue(sessions, customer, MORNING)
    with make_dispatcher(sessions, ScriptedGateway(), at_morning, settings) as dispatcher:
        assert dispatcher.dispatch_once().skipped == {"invalid_number": 1}
    assert row(sessions, message_id).status == "skipped"


def test_quiet_days_hold_marketing_but_not_transactional(
    sessions: sessionmaker[Session], clock: FixedClock, settings: Settings
) -> None:
    # Friday 20 March 2026, 10:00 Tehran; Saturday 21 March is Nowruz (1 Farvardin 1405).
    friday = datetime(2026, 3, 20, 6, 30, tzinfo=UTC)
    clock.set(friday)
    settings = with_sending(settings, quiet_weekdays=["fri"], quiet_dates=["jalali:01-01"])
    customer = add_customer(sessions)
    marketing = queue(sessions, customer, friday, rule="thank_you")
    shipped = queue(sessions, customer, friday, rule="order_shipped")
    gateway = ScriptedGateway()
    with make_dispatcher(sessions, gateway, clock, settings) as dispatcher:
        report = dispatcher.dispatch_once()
    assert (report.sent, report.deferred) == (1, 1)
    assert [m.id for m in gateway.sent] == [shipped]
    held = row(sessions, marketing)
    assert held.reason == "quiet_day"
    assert held.scheduled_for == datetime(2026, 3, 22, 5, 30, tzinfo=UTC)  # Sunday 09:00


def test_gregorian_quiet_date(
    sessions: sessionmaker[Session], at_morning: FixedClock, settings: Settings
) -> None:
    settings = with_sending(settings, quiet_dates=["2026-03-22"])
    message_id = queue(sessions, add_customer(sessions), MORNING)
    with make_dispatcher(sessions, ScriptedGateway(), at_morning, settings) as dispatcher:
        assert dispatcher.dispatch_once().deferred == 1
    assert row(sessions, message_id).scheduled_for == datetime(2026, 3, 23, 5, 30, tzinfo=UTC)


def test_a_message_that_cannot_be_rendered_fails_with_the_reason(
    sessions: sessionmaker[Session], at_morning: FixedClock, settings: Settings
) -> None:
    message_id = queue(sessions, add_customer(sessions), MORNING, rule="too_long")
    with make_dispatcher(sessions, ScriptedGateway(), at_morning, settings) as dispatcher:
        assert dispatcher.dispatch_once().failed == 1
    assert (row(sessions, message_id).status, row(sessions, message_id).reason) == (
        "failed",
        "too long",
    )


def _temporary(retry_after: float | None = None) -> object:
    def behaviour(batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        return [SendResult.temporary(m.id, "busy", "503", retry_after) for m in batch]

    return behaviour


def test_temporary_results_are_retried_with_backoff_honouring_retry_after(
    sessions: sessionmaker[Session], at_morning: FixedClock, settings: Settings
) -> None:
    settings = with_sending(settings, retry_base_seconds=30)
    plain = queue(sessions, add_customer(sessions), MORNING)
    gateway = ScriptedGateway(_temporary(), _temporary(retry_after=600))  # type: ignore[arg-type]
    with make_dispatcher(sessions, gateway, at_morning, settings) as dispatcher:
        assert dispatcher.dispatch_once().retried == 1
        first = row(sessions, plain)
        assert first.status == "queued" and first.attempts == 1 and first.last_error == "503: busy"
        assert MORNING + timedelta(seconds=15) <= first.scheduled_for
        assert first.scheduled_for <= MORNING + timedelta(seconds=30)
        at_morning.set(first.scheduled_for)
        assert dispatcher.dispatch_once().retried == 1
        second = row(sessions, plain)
        assert second.attempts == 2
        assert second.scheduled_for == first.scheduled_for + timedelta(seconds=600)
        at_morning.set(second.scheduled_for)
        assert dispatcher.dispatch_once().sent == 1
    assert row(sessions, plain).attempts == 3


def test_rate_limited_request_waits_for_retry_after_then_gives_up_at_max_attempts(
    sessions: sessionmaker[Session], at_morning: FixedClock, settings: Settings
) -> None:
    settings = with_sending(settings, max_attempts=2)

    def too_many(batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        raise GatewayError("HTTP 429", retry_after=120, code="429")

    message_id = queue(sessions, add_customer(sessions), MORNING)
    gateway = ScriptedGateway(too_many, too_many)
    with make_dispatcher(sessions, gateway, at_morning, settings) as dispatcher:
        assert dispatcher.dispatch_once().retried == 1
        waiting = row(sessions, message_id)
        assert waiting.scheduled_for >= MORNING + timedelta(seconds=120)
        at_morning.set(waiting.scheduled_for)
        assert dispatcher.dispatch_once().failed == 1
    final = row(sessions, message_id)
    assert (final.status, final.reason, final.attempts) == ("failed", "max_attempts", 2)
    assert len(gateway.requests) == 2


def test_permanent_errors_are_not_retried_and_flag_the_number(
    sessions: sessionmaker[Session], at_morning: FixedClock, settings: Settings
) -> None:
    invalid_customer = add_customer(sessions)
    invalid = queue(sessions, invalid_customer, MORNING)
    refused = queue(sessions, add_customer(sessions, phone="+989122220000"), MORNING)
    busy = queue(sessions, add_customer(sessions), MORNING)
    fine = queue(sessions, add_customer(sessions), MORNING)

    def mixed(batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        outcome = {
            invalid: SendResult.permanent(invalid, "no such number", "14", invalid_number=True),
            refused: SendResult.permanent(refused, "blacklisted", "11", opted_out=True),
            busy: SendResult.temporary(busy, "queue full"),
            fine: SendResult.accepted(fine, "ok-1"),
        }
        return [outcome[m.id] for m in batch]

    gateway = ScriptedGateway(mixed)
    with make_dispatcher(sessions, gateway, at_morning, settings) as dispatcher:
        report = dispatcher.dispatch_once()
        assert (report.sent, report.failed, report.retried) == (1, 2, 1)
        assert (row(sessions, invalid).status, row(sessions, invalid).reason) == (
            "failed",
            "invalid_number",
        )
        assert row(sessions, refused).reason == "opted_out"
        assert row(sessions, busy).status == "queued"
        with sessions() as session:
            assert session.get_one(Customer, invalid_customer).phone_invalid_at == MORNING
            opt_out = session.get_one(OptOut, "+989122220000")
            assert opt_out.source == "gateway"
        # A later message to the flagged number is skipped without asking the gateway.
        again = queue(sessions, invalid_customer, MORNING, rule="birthday")
        at_morning.advance(timedelta(days=1))
        before = len(gateway.sent)
        dispatcher.dispatch_once()
        assert row(sessions, again).reason == "invalid_number"
        assert [m.id for m in gateway.sent[before:]] == [busy]


def test_an_unexpected_gateway_crash_leaves_the_row_unknown_not_queued(
    sessions: sessionmaker[Session], at_morning: FixedClock, settings: Settings
) -> None:
    def boom(batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        raise ConnectionResetError("peer reset after sending")

    message_id = queue(sessions, add_customer(sessions), MORNING)
    with make_dispatcher(sessions, ScriptedGateway(boom), at_morning, settings) as dispatcher:
        assert dispatcher.dispatch_once().unknown == 1
    assert row(sessions, message_id).status == "unknown"


def test_auth_failure_opens_the_circuit_and_messages_stay_queued(
    sessions: sessionmaker[Session],
    at_morning: FixedClock,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def unauthorised(batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        raise GatewayError("HTTP 401 invalid API key", auth=True)

    ids = [queue(sessions, add_customer(sessions), MORNING) for _ in range(3)]
    # One request at a time, so the first refusal stops the others from starting.
    settings = settings.model_copy(update={"gateway": GatewaySettings(max_in_flight=1)})
    gateway = ScriptedGateway(unauthorised, max_batch=1)
    caplog.set_level(logging.ERROR)
    with make_dispatcher(
        sessions, gateway, at_morning, settings, breaker_cooldown=timedelta(minutes=5)
    ) as dispatcher:
        first = dispatcher.dispatch_once()
        assert first.requeued == 3 and first.failed == 0
        assert dispatcher.circuit == {"scripted": CircuitState.OPEN}
        for message_id in ids:
            stored = row(sessions, message_id)
            assert (stored.status, stored.attempts, stored.scheduled_for) == (
                "queued",
                0,
                MORNING,
            )
        caplog.clear()
        for _ in range(4):  # four ticks, 20 s apart: one log line per minute
            assert dispatcher.dispatch_once().paused
            at_morning.advance(timedelta(seconds=20))
        paused_lines = [r for r in caplog.records if "dispatch paused" in r.getMessage()]
        assert len(paused_lines) == 2
        assert len(gateway.requests) == 1
        at_morning.set(MORNING + timedelta(minutes=5))
        probe = dispatcher.dispatch_once()
        assert probe.claimed == 1 and probe.sent == 1  # half-open: one request probes
        assert dispatcher.circuit == {"scripted": CircuitState.CLOSED}
        assert dispatcher.dispatch_once().sent == 2
    assert {m.id for m in gateway.sent[1:]} == set(ids)


def test_consecutive_temporary_failures_open_the_circuit(
    sessions: sessionmaker[Session], at_morning: FixedClock, settings: Settings
) -> None:
    def down(batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        raise GatewayError("HTTP 503")

    ids = [queue(sessions, add_customer(sessions), MORNING) for _ in range(5)]
    settings = settings.model_copy(update={"gateway": GatewaySettings(max_in_flight=1)})
    gateway = ScriptedGateway(down, down, down, down, max_batch=1)
    with make_dispatcher(
        sessions, gateway, at_morning, settings, breaker_threshold=3
    ) as dispatcher:
        report = dispatcher.dispatch_once()
        assert (report.retried, report.requeued) == (3, 2)
        assert dispatcher.circuit == {"scripted": CircuitState.OPEN}
        attempts = sorted(row(sessions, i).attempts for i in ids)
        assert attempts == [0, 0, 1, 1, 1]
        at_morning.advance(timedelta(seconds=61))
        probe = dispatcher.dispatch_once()  # the probe fails: open again
        assert probe.retried == 1 and dispatcher.circuit == {"scripted": CircuitState.OPEN}
        assert dispatcher.dispatch_once().paused


def test_failover_sends_through_the_fallback_while_the_primary_is_open(
    sessions: sessionmaker[Session], at_morning: FixedClock, settings: Settings
) -> None:
    def unauthorised(batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        raise GatewayError("HTTP 401", auth=True)

    settings = settings.model_copy(
        update={
            "gateway": GatewaySettings(name="scripted", fallback="backup", sender="1000"),
            "gateways": {"backup": GatewaySettings(name="scripted", sender="2000")},
        }
    )
    ids = [queue(sessions, add_customer(sessions), MORNING) for _ in range(4)]
    primary = ScriptedGateway(unauthorised)
    backup = ScriptedGateway()
    with make_dispatcher(
        sessions, primary, at_morning, settings, fallback_gateway=backup
    ) as dispatcher:
        assert dispatcher.dispatch_once().requeued == 4
        report = dispatcher.dispatch_once()
        assert (report.gateway, report.sent) == ("backup", 4)
    assert sorted(m.id for m in backup.sent) == sorted(ids)
    assert {m.sender for m in backup.sent} == {"2000"}
    with sessions() as session:
        rows = session.scalars(select(Message)).all()
        assert {(m.status, m.gateway) for m in rows} == {("sent", "backup")}


def test_expired_leases_become_unknown_and_are_reconciled(
    sessions: sessionmaker[Session], at_morning: FixedClock, settings: Settings
) -> None:
    ids = [queue(sessions, add_customer(sessions), MORNING) for _ in range(4)]
    delivered, lost, silent, other = ids
    with sessions.begin() as session:
        for message in session.scalars(select(Message)):
            message.status = "sending"
            message.gateway = "scripted" if message.id != other else "retired"
            message.lease_until = MORNING - timedelta(seconds=1)
    gateway = ScriptedGateway(statuses={delivered: "delivered", lost: "not_found"})
    with make_dispatcher(sessions, gateway, at_morning, settings) as dispatcher:
        report = dispatcher.dispatch_once()
        assert report.unknown == 4 and report.claimed == 0  # never re-sent blindly
        assert gateway.sent == []
        result = dispatcher.reconcile()
        assert result.checked == 4 and result.still_unknown == 2
        assert result.updated == {"delivered": 1, "not_found": 1}
        assert row(sessions, delivered).status == "delivered"
        assert row(sessions, silent).status == "unknown"
        assert row(sessions, other).status == "unknown"
        assert row(sessions, lost).status == "queued"
        assert dispatcher.dispatch_once().sent == 1
    assert [m.id for m in gateway.sent] == [lost]


def test_reconciliation_hands_the_gateway_its_own_message_ids(
    sessions: sessionmaker[Session], at_morning: FixedClock, settings: Settings
) -> None:
    """Gateways such as Twilio can only look a message up by the id they gave it."""
    message_id = queue(sessions, add_customer(sessions), MORNING)
    with sessions.begin() as session:
        message = session.get_one(Message, message_id)
        message.status, message.gateway, message.provider_id = "unknown", "scripted", "SM42"

    class ByProviderId(ScriptedGateway):
        def status(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryReport]:
            return [
                DeliveryReport(status="delivered", provider_id=m.provider_id)
                for m in messages
                if m.provider_id == "SM42"
            ]

    with make_dispatcher(sessions, ByProviderId(), at_morning, settings) as dispatcher:
        assert dispatcher.reconcile().updated == {"delivered": 1}
    assert row(sessions, message_id).status == "delivered"


def test_without_status_lookup_unknown_rows_stay_unknown(
    sessions: sessionmaker[Session], at_morning: FixedClock, settings: Settings
) -> None:
    message_id = queue(sessions, add_customer(sessions), MORNING)
    with sessions.begin() as session:
        message = session.get_one(Message, message_id)
        message.status, message.gateway = "unknown", "scripted"
    gateway = ScriptedGateway(statuses={message_id: "delivered"}, supports_status=False)
    with make_dispatcher(sessions, gateway, at_morning, settings) as dispatcher:
        assert dispatcher.reconcile().still_unknown == 1
    assert row(sessions, message_id).status == "unknown"


def test_rate_limit_spaces_requests_on_the_injected_clock(
    sessions: sessionmaker[Session], at_morning: FixedClock, settings: Settings
) -> None:
    for _ in range(30):
        queue(sessions, add_customer(sessions), MORNING)
    settings = settings.model_copy(
        update={"gateway": GatewaySettings(rate_per_second=10, max_in_flight=1)}
    )
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        at_morning.advance(timedelta(seconds=seconds))

    gateway = ScriptedGateway(max_batch=1)
    with make_dispatcher(sessions, gateway, at_morning, settings, sleep=sleep) as dispatcher:
        assert dispatcher.dispatch_once().sent == 30
    # A burst of 10, then 20 more at 10 per second.
    assert sum(slept) == pytest.approx(2.0)


def test_a_renderer_bug_fails_that_row_and_the_batch_goes_on(
    sessions: sessionmaker[Session], at_morning: FixedClock, settings: Settings
) -> None:
    class BrokenForOne(FakeRenderer):
        def render(self, session: Session, message: Message) -> Rendered:
            if message.rule == "broken":
                raise KeyError("first_name")
            return super().render(session, message)

    broken = queue(sessions, add_customer(sessions), MORNING, rule="broken")
    fine = queue(sessions, add_customer(sessions), MORNING)
    gateway = ScriptedGateway()
    with make_dispatcher(
        sessions, gateway, at_morning, settings, renderer=BrokenForOne()
    ) as dispatcher:
        report = dispatcher.dispatch_once()
    assert (report.sent, report.failed) == (1, 1)
    assert (row(sessions, broken).status, row(sessions, broken).reason) == (
        "failed",
        "render_error",
    )
    assert [m.id for m in gateway.sent] == [fine]


def test_a_policy_lookup_error_hands_the_batch_back_untouched(
    sessions: sessionmaker[Session], at_morning: FixedClock, settings: Settings
) -> None:
    def no_such_rule(rule: str) -> RulePolicy:
        raise LookupError(rule)

    message_id = queue(sessions, add_customer(sessions), MORNING)
    with (
        make_dispatcher(
            sessions, ScriptedGateway(), at_morning, settings, policies=no_such_rule
        ) as dispatcher,
        pytest.raises(LookupError),
    ):
        dispatcher.dispatch_once()
    stored = row(sessions, message_id)
    assert (stored.status, stored.attempts, stored.lease_until) == ("queued", 0, None)


def test_caps_respect_what_another_dispatcher_is_sending_right_now(
    sessions: sessionmaker[Session], at_morning: FixedClock, settings: Settings
) -> None:
    customer = add_customer(sessions)
    rival_high = queue(sessions, customer, MORNING, rule="birthday", priority=9)
    mine = queue(sessions, customer, MORNING, rule="thank_you", priority=1)
    neighbour = add_customer(sessions)
    rival_low = queue(sessions, neighbour, MORNING, rule="win_back", priority=0)
    other_phone = queue(sessions, neighbour, MORNING, rule="thank_you", priority=5)
    with sessions.begin() as session:
        for rival in (rival_high, rival_low):
            message = session.get_one(Message, rival)
            message.status, message.lease_until = "sending", MORNING + timedelta(minutes=2)
    gateway = ScriptedGateway()
    with make_dispatcher(sessions, gateway, at_morning, settings) as dispatcher:
        report = dispatcher.dispatch_once()
    # The higher-priority rival holds today's slot for this phone; a lower one does not.
    assert (report.sent, report.deferred) == (1, 1)
    assert row(sessions, mine).reason == "cap"
    assert [m.id for m in gateway.sent] == [other_phone]
