from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from campaigner.clock import FixedClock
from campaigner.config import GatewaySettings, Settings
from campaigner.db.models import (
    Customer,
    InboundMessage,
    Message,
    MessageStatus,
    NpsResponse,
    OptOut,
)
from campaigner.gateways.base import Gateway
from campaigner.gateways.kannel import KannelGateway
from campaigner.gateways.kavenegar import KavenegarGateway
from campaigner.gateways.twilio import TwilioGateway, twilio_signature
from campaigner.runtime import build_gateway
from campaigner.server.app import create_app

TOKEN = "hook-token-123"
TWILIO_TOKEN = "twilio-secret"
PHONE = "+989121234567"


@pytest.fixture
def client(
    settings: Settings, sessions: sessionmaker[Session], clock: FixedClock
) -> Iterator[TestClient]:
    settings = Settings.model_validate(
        {"database": {"url": settings.database.url}, "server": {"webhook_token": TOKEN}}
    )
    gateways: dict[str, Gateway] = {
        "kannel": KannelGateway(GatewaySettings(name="kannel")),
        "kavenegar": KavenegarGateway(GatewaySettings(name="kavenegar", api_key="kave-key")),
        "twilio": TwilioGateway(
            GatewaySettings(name="twilio", account_sid="AC1", auth_token=TWILIO_TOKEN),
            webhook_url="http://testserver/webhooks/twilio",
        ),
    }
    app = create_app(settings=settings, sessions=sessions, clock=clock, gateways=gateways)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def message_id(sessions: sessionmaker[Session]) -> int:
    return sent_message(sessions, rule="thank_you", sent=datetime(2026, 3, 20, tzinfo=UTC))


def sent_message(sessions: sessionmaker[Session], *, rule: str, sent: datetime) -> int:
    """A customer at PHONE and one message of `rule` sent to them through kannel."""
    with sessions.begin() as session:
        customer = Customer(external_id="c1", first_name="سارا", phone=PHONE)
        session.add(customer)
        session.flush()
        row = Message(
            rule=rule,
            customer_id=customer.id,
            occurrence_key="1",
            status=MessageStatus.SENT,
            phone=PHONE,
            due_at=sent,
            scheduled_for=sent,
            gateway="kannel",
            sent_at=sent,
        )
        session.add(row)
        session.flush()
        return row.id


def status_of(sessions: sessionmaker[Session], message_id: int) -> str:
    with sessions() as session:
        row = session.get(Message, message_id)
        assert row is not None
        return row.status


def test_wrong_or_missing_token_is_401_and_changes_nothing(
    client: TestClient, sessions: sessionmaker[Session], message_id: int
) -> None:
    for params, headers in (
        ({"id": message_id, "status": 1}, {}),
        ({"id": message_id, "status": 1, "token": "nope"}, {}),
        ({"id": message_id, "status": 1}, {"X-Campaigner-Token": "nope"}),
    ):
        assert client.get("/webhooks/kannel/dlr", params=params, headers=headers).status_code == 401
    inbound = client.get("/webhooks/kannel/inbound", params={"from": PHONE, "text": "STOP"})
    assert inbound.status_code == 401
    assert client.get("/webhooks/nosuch/dlr", params={"token": TOKEN}).status_code == 404
    assert client.get("/webhooks/nosuch/dlr").status_code == 401
    assert status_of(sessions, message_id) == "sent"
    with sessions() as session:
        assert session.scalars(select(OptOut)).all() == []


def test_delivery_report_updates_the_ledger_once(
    client: TestClient, sessions: sessionmaker[Session], message_id: int, clock: FixedClock
) -> None:
    for value in ("8", "1", "1", "2"):  # accepted, delivered, resent, late failure
        response = client.get(
            "/webhooks/kannel/dlr", params={"id": message_id, "status": value, "token": TOKEN}
        )
        assert response.status_code == 200
    with sessions() as session:
        row = session.get(Message, message_id)
        assert row is not None
        assert (row.status, row.delivered_at) == ("delivered", clock.now())


def test_undelivered_report_and_unknown_id(
    client: TestClient, sessions: sessionmaker[Session], message_id: int
) -> None:
    headers = {"X-Campaigner-Token": TOKEN}
    response = client.post(
        "/webhooks/kannel/dlr", params={"id": message_id, "status": "16"}, headers=headers
    )
    assert response.status_code == 200
    assert status_of(sessions, message_id) == "undelivered"
    unknown = client.get("/webhooks/kannel/dlr", params={"id": 999, "status": 1}, headers=headers)
    assert unknown.status_code == 200 and unknown.text == "ok 0/1"
    bad = client.get("/webhooks/kannel/dlr", params={"status": 1}, headers=headers)
    assert bad.status_code == 400


@pytest.mark.parametrize("reply", ["لغو", " STOP ", "۱۱", "لغو ۱۱", "stop!"])
def test_opt_out_reply_then_opt_in(
    client: TestClient, sessions: sessionmaker[Session], message_id: int, reply: str
) -> None:
    params = {"from": "09121234567", "text": reply, "id": "mo-1", "token": TOKEN}
    response = client.get("/webhooks/kannel/inbound", params=params)
    assert response.status_code == 200 and response.text == "ok opted_out"
    assert client.get("/webhooks/kannel/inbound", params=params).text == "ok duplicate"
    with sessions() as session:
        opt_out = session.get(OptOut, PHONE)
        assert opt_out is not None and opt_out.source == "sms"
    start = {"from": "989121234567", "text": "START", "id": "mo-2", "token": TOKEN}
    assert client.get("/webhooks/kannel/inbound", params=start).text == "ok opted_in"
    with sessions() as session:
        assert session.get(OptOut, PHONE) is None
        stored = session.scalars(select(InboundMessage).order_by(InboundMessage.id)).all()
        assert [(m.phone, m.action) for m in stored] == [(PHONE, "opted_out"), (PHONE, "opted_in")]
        assert stored[0].customer_id is not None


def test_other_replies_are_stored_only(client: TestClient, sessions: sessionmaker[Session]) -> None:
    params = {"from": PHONE, "text": "ممنون، لغو نکنید", "id": "mo-3", "token": TOKEN}
    assert client.get("/webhooks/kannel/inbound", params=params).text == "ok stored"
    with sessions() as session:
        assert session.get(OptOut, PHONE) is None
        (stored,) = session.scalars(select(InboundMessage)).all()
        assert stored.text == "ممنون، لغو نکنید"


def test_twilio_callbacks_are_verified_by_signature(
    client: TestClient, sessions: sessionmaker[Session], message_id: int
) -> None:
    with sessions.begin() as session:
        row = session.get(Message, message_id)
        assert row is not None
        row.gateway, row.provider_id = "twilio", "SM1"
    url = f"http://testserver/webhooks/twilio/dlr?id={message_id}"
    form = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    forged = client.post(url, data=form, headers={"X-Twilio-Signature": "bm90IGl0"})
    assert forged.status_code == 401
    assert status_of(sessions, message_id) == "sent"
    signed = client.post(
        url, data=form, headers={"X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, url, form)}
    )
    assert signed.status_code == 200
    assert status_of(sessions, message_id) == "delivered"
    stop = {"From": PHONE, "Body": "STOP", "MessageSid": "SM9"}
    inbound_url = "http://testserver/webhooks/twilio/inbound"
    response = client.post(
        inbound_url,
        data=stop,
        headers={"X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, inbound_url, stop)},
    )
    assert response.status_code == 200
    with sessions() as session:
        assert session.get(OptOut, PHONE) is not None


def test_kavenegar_callbacks_find_the_row_by_kavenegar_id(
    client: TestClient, sessions: sessionmaker[Session], message_id: int, clock: FixedClock
) -> None:
    with sessions.begin() as session:
        row = session.get(Message, message_id)
        assert row is not None
        row.gateway, row.provider_id = "kavenegar", "8512345"
    url = "/webhooks/kavenegar/dlr"
    refused = client.post(url, data={"messageid": "8512345", "status": "10"})
    assert refused.status_code == 401 and status_of(sessions, message_id) == "sent"
    params = {"token": TOKEN}
    telecom = client.post(url, params=params, data={"messageid": "8512345", "status": "4"})
    assert telecom.text == "ok 1/1" and status_of(sessions, message_id) == "sent"
    delivered = client.get(url, params={**params, "messageid": "8512345", "status": "10"})
    assert delivered.text == "ok 1/1"
    late = client.post(url, params=params, data={"messageid": "8512345", "status": "11"})
    assert late.status_code == 200
    with sessions() as session:
        row = session.get(Message, message_id)
        assert row is not None
        assert (row.status, row.delivered_at) == ("delivered", clock.now())
    unknown = client.post(url, params=params, data={"messageid": "999", "status": "10"})
    assert unknown.status_code == 200 and unknown.text == "ok 0/1"
    assert client.post(url, params=params, data={"status": "10"}).status_code == 400


def test_kavenegar_blacklisted_report_opts_the_number_out(
    client: TestClient, sessions: sessionmaker[Session], message_id: int
) -> None:
    with sessions.begin() as session:
        row = session.get(Message, message_id)
        assert row is not None
        row.gateway, row.provider_id = "kavenegar", "8512345"
    response = client.post(
        "/webhooks/kavenegar/dlr",
        headers={"X-Campaigner-Token": TOKEN},
        data={"messageid": "8512345", "status": "14"},
    )
    assert response.text == "ok 1/1"
    assert status_of(sessions, message_id) == "undelivered"
    with sessions() as session:
        opt_out = session.get(OptOut, PHONE)
        assert opt_out is not None and opt_out.source == "gateway"


def test_a_score_reply_to_a_survey_is_recorded_as_nps(
    settings: Settings, sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    settings = Settings.model_validate(
        {"database": {"url": settings.database.url}, "server": {"webhook_token": TOKEN}}
    )
    sent_message(sessions, rule="nps", sent=clock.now())
    app = create_app(
        settings=settings,
        sessions=sessions,
        clock=clock,
        gateways={"kannel": KannelGateway(GatewaySettings(name="kannel"))},
        nps_windows=lambda: {"nps": timedelta(days=3)},
    )
    with TestClient(app) as client:
        params = {"from": PHONE, "text": "۹", "id": "mo-9", "token": TOKEN}
        assert client.get("/webhooks/kannel/inbound", params=params).text == "ok nps_score"
        other = {"from": PHONE, "text": "thanks!", "id": "mo-10", "token": TOKEN}
        assert client.get("/webhooks/kannel/inbound", params=other).text == "ok stored"
    with sessions() as session:
        (score,) = session.scalars(select(NpsResponse)).all()
        assert (score.rule, score.score) == ("nps", 9)
        actions = session.scalars(select(InboundMessage.action).order_by(InboundMessage.id)).all()
        assert actions == ["nps_score", "stored"]


def test_each_gateway_takes_only_its_own_token(
    settings: Settings, sessions: sessionmaker[Session], clock: FixedClock, message_id: int
) -> None:
    """Issue 13: one shared token let its holder post a forged STOP on any gateway's path."""
    settings = Settings.model_validate(
        {
            "database": {"url": settings.database.url},
            "server": {"webhook_token": TOKEN},
            "gateway": {"name": "kannel", "webhook_token": "kannel-only"},
        }
    )
    gateways: dict[str, Gateway] = {
        "kannel": KannelGateway(settings.gateway, webhook_token="kannel-only"),
        "kavenegar": KavenegarGateway(GatewaySettings(name="kavenegar", api_key="kave-key")),
        "twilio": TwilioGateway(
            GatewaySettings(name="twilio", account_sid="AC1", auth_token=TWILIO_TOKEN),
            webhook_url="http://testserver/webhooks/twilio",
        ),
    }
    app = create_app(settings=settings, sessions=sessions, clock=clock, gateways=gateways)
    stop = {"from": PHONE, "text": "STOP", "id": "mo-1"}
    twilio_stop = {"From": PHONE, "Body": "STOP", "MessageSid": "SM9"}
    with TestClient(app) as client:
        # The shared token no longer opens Kannel, which has its own...
        assert (
            client.get("/webhooks/kannel/inbound", params={**stop, "token": TOKEN}).status_code
            == 401
        )
        # ...and Kannel's token opens nothing else.
        kavenegar = {"messageid": "1", "status": "10", "token": "kannel-only"}
        assert client.get("/webhooks/kavenegar/dlr", params=kavenegar).status_code == 401
        # Twilio signs its webhooks: no token at all is accepted there.
        for token in (TOKEN, "kannel-only"):
            forged = client.post(
                "/webhooks/twilio/inbound", params={"token": token}, data=twilio_stop
            )
            assert forged.status_code == 401
        with sessions() as session:
            assert session.scalars(select(OptOut)).all() == []
        # Each with its own proof.
        assert (
            client.get("/webhooks/kavenegar/dlr", params={**kavenegar, "token": TOKEN}).status_code
            == 200
        )
        own = client.get("/webhooks/kannel/inbound", params={**stop, "token": "kannel-only"})
        assert own.text == "ok opted_out"


def test_a_gateway_token_comes_from_its_own_table_or_the_server(settings: Settings) -> None:
    settings = Settings.model_validate(
        {
            "server": {"webhook_token": "shared-token"},
            "gateway": {"name": "kannel", "fallback": "backup"},
            "gateways": {"backup": {"name": "kavenegar", "webhook_token": "backup-token"}},
        }
    )
    assert build_gateway(settings).webhook_token == "shared-token"
    assert build_gateway(settings, "backup").webhook_token == "backup-token"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/webhooks/kannel/dlr", {"id": "9" * 40, "status": "1"}),
        ("/webhooks/kannel/dlr", {"id": str(2**31), "status": "1"}),
        ("/webhooks/kannel/dlr", {"id": "²", "status": "1"}),
        ("/webhooks/kannel/inbound", {"from": PHONE, "text": "STOP", "ts": "9" * 40}),
        ("/webhooks/kannel/inbound", {"from": PHONE, "text": "STOP", "ts": "99999999999999"}),
        ("/webhooks/twilio/dlr", {"id": "9" * 40}),
    ],
)
def test_huge_ids_and_timestamps_are_a_bad_request_not_a_server_error(
    client: TestClient,
    sessions: sessionmaker[Session],
    message_id: int,
    caplog: pytest.LogCaptureFixture,
    path: str,
    params: dict[str, str],
) -> None:
    """Issue 13: a huge DLR id or inbound ts answered 500 with a traceback."""
    if path.startswith("/webhooks/twilio"):
        url = f"http://testserver{path}?id={params['id']}"
        form = {"MessageSid": "SM1", "MessageStatus": "delivered"}
        signature = twilio_signature(TWILIO_TOKEN, url, form)
        response = client.post(url, data=form, headers={"X-Twilio-Signature": signature})
    else:
        response = client.get(path, params={**params, "token": TOKEN})
    assert response.status_code == 400
    assert [r.levelname for r in caplog.records if r.name.startswith("campaigner")] == ["WARNING"]
    assert status_of(sessions, message_id) == "sent"
    with sessions() as session:
        assert session.scalars(select(OptOut)).all() == []
