"""A real Kannel (bearerbox, smsbox, fakesmsc) on loopback, talking to our webhook server.

Follows docs in shared/reference/kannel.md: FIFO as fakesmsc's stdin, readiness by status page.
Skipped where the Kannel binaries are absent, unless CAMPAIGNER_REQUIRE_KANNEL=1 (CI).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kannel_stack import (
    PASSWORD,
    USERNAME,
    KannelStack,
    free_port,
    missing_binaries,
    wait_until,
)
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import SystemClock
from campaigner.config import GatewaySettings, Settings
from campaigner.db import create_engine_for, session_factory
from campaigner.db.models import Customer, Message, MessageStatus, OptOut
from campaigner.gateways.base import Gateway, OutgoingMessage
from campaigner.gateways.kannel import KannelGateway
from campaigner.server.app import create_app
from campaigner.server.serve import BackgroundServer

TOKEN = "e2e-webhook-token"
SENDER = "98100"

pytestmark = pytest.mark.slow


def _require_kannel() -> None:
    missing = missing_binaries()
    if missing:
        reason = (
            f"Kannel binaries absent ({', '.join(missing)}): apt-get install kannel kannel-extras"
        )
        if os.environ.get("CAMPAIGNER_REQUIRE_KANNEL") == "1":
            pytest.fail(reason + " (CAMPAIGNER_REQUIRE_KANNEL=1)")
        pytest.skip(reason)


@pytest.fixture
def webhook_db(sqlite_template: Path, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    path = tmp_path / "e2e.db"
    shutil.copyfile(sqlite_template, path)
    engine = create_engine_for(f"sqlite:///{path}")
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def webhook_server(
    webhook_db: sessionmaker[Session],
) -> Iterator[tuple[BackgroundServer, dict[str, Gateway]]]:
    settings = Settings.model_validate({"server": {"webhook_token": TOKEN}})
    gateways: dict[str, Gateway] = {}
    app = create_app(settings=settings, sessions=webhook_db, clock=SystemClock(), gateways=gateways)
    server = BackgroundServer(app).start()
    yield server, gateways
    server.stop()


@pytest.fixture
def kannel(
    tmp_path: Path, webhook_server: tuple[BackgroundServer, dict[str, Gateway]]
) -> Iterator[tuple[KannelStack, KannelGateway]]:
    _require_kannel()
    server, gateways = webhook_server
    stack = KannelStack(tmp_path)
    gateway = KannelGateway(
        GatewaySettings(
            name="kannel",
            url=stack.sendsms_url,
            username=USERNAME,
            password=PASSWORD,
            sender=SENDER,
        ),
        webhook_url=f"{server.url}/webhooks/kannel",
        webhook_token=TOKEN,
    )
    gateways["kannel"] = gateway
    try:
        yield stack.start(gateway.inbound_get_url()), gateway
    finally:
        stack.stop()
        gateway.close()


def test_messages_reports_and_opt_out_through_a_real_kannel(
    kannel: tuple[KannelStack, KannelGateway], webhook_db: sessionmaker[Session]
) -> None:
    state, gateway = kannel
    persian = "سلام سارا، خرید شما ثبت شد. لغو۱۱"
    english = "Hi Sam, thanks for your order! Reply STOP to opt out"
    now = datetime.now(UTC)
    with webhook_db.begin() as session:
        customer = Customer(external_id="c1", first_name="سارا", phone="+989121234567")
        session.add(customer)
        session.flush()
        rows = [
            Message(
                rule=rule,
                customer_id=customer.id,
                occurrence_key="1",
                status=MessageStatus.SENT,
                phone=phone,
                due_at=now,
                scheduled_for=now,
                gateway="kannel",
                sent_at=now,
            )
            for rule, phone in (("thank_you", "+989121234567"), ("win_back", "+14155550100"))
        ]
        session.add_all(rows)
        session.flush()
        ids = [row.id for row in rows]

    results = gateway.send(
        [
            OutgoingMessage(ids[0], "+989121234567", persian, encoding="ucs2"),
            OutgoingMessage(ids[1], "+14155550100", english, encoding="gsm7"),
        ]
    )
    assert [r.outcome for r in results] == ["accepted", "accepted"]

    wait_until(lambda: len(state.received()) >= 2, "fakesmsc to receive both messages")
    assert sorted(state.received()) == sorted(
        [(SENDER, "989121234567", persian), (SENDER, "14155550100", english)]
    )

    def statuses() -> list[str]:
        with webhook_db() as session:
            return list(session.scalars(select(Message.status).order_by(Message.id)))

    wait_until(lambda: statuses() == ["delivered", "delivered"], "delivery reports")

    state.inject("989121234567", SENDER, "لغو")

    def opted_out() -> OptOut | None:
        with webhook_db() as session:
            return session.get(OptOut, "+989121234567")

    opt_out = wait_until(opted_out, "the opt-out from the inbound reply")
    assert isinstance(opt_out, OptOut) and opt_out.source == "sms"


def test_a_report_sent_while_the_daemon_was_down_arrives_once_it_is_back(
    tmp_path: Path, webhook_db: sessionmaker[Session]
) -> None:
    """docs/dispatch.md: with `http-request-retry`, Kannel sends again a delivery report
    whose callback found the daemon down (a restart), and it lands when the daemon is back.
    Without it (the first test's configuration), such a report is lost."""
    _require_kannel()
    port = free_port()
    settings = Settings.model_validate({"server": {"webhook_token": TOKEN}})
    gateways: dict[str, Gateway] = {}
    app = create_app(settings=settings, sessions=webhook_db, clock=SystemClock(), gateways=gateways)
    stack = KannelStack(tmp_path, smsbox_options="http-request-retry = 10\nhttp-queue-delay = 1\n")
    gateway = KannelGateway(
        GatewaySettings(
            name="kannel",
            url=stack.sendsms_url,
            username=USERNAME,
            password=PASSWORD,
            sender=SENDER,
        ),
        webhook_url=f"http://127.0.0.1:{port}/webhooks/kannel",
        webhook_token=TOKEN,
    )
    gateways["kannel"] = gateway
    now = datetime.now(UTC)
    with webhook_db.begin() as session:
        customer = Customer(external_id="c1", first_name="سارا", phone="+989121234567")
        session.add(customer)
        session.flush()
        row = Message(
            rule="thank_you",
            customer_id=customer.id,
            occurrence_key="1",
            status=MessageStatus.SENT,
            phone=customer.phone,
            due_at=now,
            scheduled_for=now,
            gateway="kannel",
            sent_at=now,
        )
        session.add(row)
        session.flush()
        message_id = row.id

    def status() -> str:
        with webhook_db() as session:
            found = session.get(Message, message_id)
            return found.status if found is not None else ""

    server = BackgroundServer(app, port=port)
    try:
        stack.start(gateway.inbound_get_url())
        [result] = gateway.send([OutgoingMessage(message_id, "+989121234567", "سلام سارا")])
        assert result.outcome == "accepted"
        wait_until(lambda: stack.received_count() == 1, "fakesmsc to receive the message")
        # The SMSC reports within milliseconds; the daemon is still down: refused.
        wait_until(lambda: "Couldn't fetch" in stack.smsbox_log(), "a refused callback")
        assert status() == MessageStatus.SENT
        server.start()
        wait_until(lambda: status() == MessageStatus.DELIVERED, "the report, sent again", 30)
    finally:
        server.stop()
        stack.stop()
        gateway.close()


def test_an_immediate_reply_kannel_is_accepted_and_reports_still_land(
    tmp_path: Path, webhook_db: sessionmaker[Session]
) -> None:
    """docs/gateways.md: with `immediate-sendsms-reply = true` smsbox answers "Sent." (or
    "Sent. Message splits: 2") without waiting for bearerbox, which takes the ~40 ms delayed-ACK
    stalls out of each answer when delivery reports share smsbox's link to bearerbox. Such an
    answer is an acceptance, not an unknown outcome, and the report still lands."""
    _require_kannel()
    settings = Settings.model_validate({"server": {"webhook_token": TOKEN}})
    gateways: dict[str, Gateway] = {}
    app = create_app(settings=settings, sessions=webhook_db, clock=SystemClock(), gateways=gateways)
    stack = KannelStack(tmp_path, smsbox_options="immediate-sendsms-reply = true\n")
    now = datetime.now(UTC)
    with webhook_db.begin() as session:
        customer = Customer(external_id="c1", first_name="سارا", phone="+989121234567")
        session.add(customer)
        session.flush()
        rows = [
            Message(
                rule="thank_you",
                customer_id=customer.id,
                occurrence_key=str(n),
                status=MessageStatus.SENDING,
                phone=customer.phone,
                due_at=now,
                scheduled_for=now,
                gateway="kannel",
            )
            for n in range(2)
        ]
        session.add_all(rows)
        session.flush()
        ids = [row.id for row in rows]
    short = "سلام سارا"
    long = "سلام سارا، " + "خرید شما ثبت شد. " * 6  # over 70 UCS-2 characters: two parts
    with BackgroundServer(app) as server:
        gateway = KannelGateway(
            GatewaySettings(
                name="kannel",
                url=stack.sendsms_url,
                username=USERNAME,
                password=PASSWORD,
                sender=SENDER,
            ),
            webhook_url=f"{server.url}/webhooks/kannel",
            webhook_token=TOKEN,
        )
        gateways["kannel"] = gateway
        try:
            stack.start(gateway.inbound_get_url())
            results = gateway.send(
                [
                    OutgoingMessage(ids[0], customer.phone, short, encoding="ucs2"),
                    OutgoingMessage(ids[1], customer.phone, long, encoding="ucs2"),
                ]
            )
            assert [r.outcome for r in results] == ["accepted", "accepted"]
            wait_until(lambda: stack.received_count() == 3, "fakesmsc to receive three parts")

            def statuses() -> list[str]:
                with webhook_db() as session:
                    query = select(Message.status).order_by(Message.id)
                    return list(session.scalars(query))

            wait_until(lambda: statuses() == ["delivered", "delivered"], "delivery reports")
        finally:
            stack.stop()
            gateway.close()
