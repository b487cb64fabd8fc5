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
from kannel_stack import PASSWORD, USERNAME, KannelStack, missing_binaries, wait_until
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
