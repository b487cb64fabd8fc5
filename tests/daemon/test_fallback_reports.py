"""Delivery reports for messages the fallback gateway carried reach their rows.

The daemon is wired as `campaigner run` wires it (Service: runtime, routes, HTTP app); only
the providers are fakes: Kavenegar through respx, Kannel as a local smsbox stand-in (its
requests go through the standard library, not httpx). Provider shapes follow
shared/reference/gateways.md:
Kavenegar's `sendarray.json` reply lists entries with `messageid` and `status`, the panel's
delivery callback posts `messageid` and `status`, and status 14 is "blocked (blacklist)";
Kannel's sendsms answers `202 0: Accepted for delivery` and `403 Authorization failed for
sendsms`, and calls the per-message `dlr-url` with `%d` = 1 for delivered.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx
from daemon_helpers import ADMIN_TOKEN, Shop
from kannel_stand_in import KannelStandIn
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from campaigner.clock import SystemClock
from campaigner.config import load_settings
from campaigner.daemon.runner import Service
from campaigner.db.models import Message, OptOut

TOKEN = ADMIN_TOKEN  # the server.webhook_token every Shop is written with
KAVENEGAR_KEY = "6A6B6C-KAVE-FALLBACK-7A7B7C"
SENDARRAY = f"https://api.kavenegar.com/v1/{KAVENEGAR_KEY}/sms/sendarray.json"


def kavenegar_accepts(request: httpx.Request) -> httpx.Response:
    sent = {k: json.loads(v[0]) for k, v in parse_qs(request.content.decode()).items()}
    entries = [
        {"messageid": 8512000 + int(local), "status": 1, "receptor": receptor}
        for local, receptor in zip(sent["localmessageids"], sent["receptor"], strict=True)
    ]
    return httpx.Response(
        200, json={"return": {"status": 200, "message": "ok"}, "entries": entries}
    )


def shop_with_fallback(tmp_path: Path, db_url: str, primary: str, backup: str) -> Shop:
    gateway = {"name": "kannel", "url": primary, "fallback": "backup"}
    shop = Shop(tmp_path, db_url, gateway).write()
    extra = f"\n[gateways.backup]\n{backup}\n"
    shop.config.write_text(shop.config.read_text() + extra)
    shop.add_paid_orders(1)
    return shop


@pytest.fixture
def refusing() -> Iterator[KannelStandIn]:
    """The primary Kannel, refusing our credentials (its circuit opens at once)."""
    server = KannelStandIn(refuse=True).start()
    yield server
    server.stop()


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


def send_through_the_fallback(
    shop: Shop, engine: Engine, sessions: sessionmaker[Session]
) -> tuple[Service, Message]:
    """Plan, then dispatch while the primary refuses our credentials (its circuit opens)."""
    service = Service(
        load_settings(str(shop.config)), engine=engine, sessions=sessions, clock=SystemClock()
    )
    service.plan()
    report = service.runtime.drain()
    assert (report.requeued, report.sent) == (1, 1), report
    with sessions() as session:
        (message,) = session.scalars(select(Message)).all()
    assert (message.status, message.gateway) == ("sent", "backup")
    return service, message


def test_a_blacklist_report_for_a_fallback_message_opts_the_number_out(
    tmp_path: Path,
    db_url: str,
    engine: Engine,
    sessions: sessionmaker[Session],
    mock: respx.MockRouter,
    refusing: KannelStandIn,
) -> None:
    """Regression: rows stored under `backup` ignored reports arriving on the provider's path."""
    backup = f'name = "kavenegar"\napi_key = "{KAVENEGAR_KEY}"\nsender = "10004346"'
    shop = shop_with_fallback(tmp_path, db_url, refusing.url, backup)
    mock.post(SENDARRAY).mock(side_effect=kavenegar_accepts)
    service, message = send_through_the_fallback(shop, engine, sessions)

    with TestClient(service.http_app()) as client:
        # Kavenegar's panel has one callback URL, on the provider's path.
        response = client.post(
            "/webhooks/kavenegar/dlr",
            params={"token": TOKEN},
            data={"messageid": message.provider_id or "", "status": "14"},
        )
    assert response.text == "ok 1/1"
    with sessions() as session:
        stored = session.get_one(Message, message.id)
        opt_out = session.get(OptOut, message.phone)
    assert stored.status == "undelivered"
    assert opt_out is not None and (opt_out.source, opt_out.reason) == (
        "gateway",
        "backup blacklist",
    )


def test_a_second_kannel_as_fallback_gets_its_reports_on_its_own_path_and_the_providers(
    tmp_path: Path,
    db_url: str,
    engine: Engine,
    sessions: sessionmaker[Session],
    refusing: KannelStandIn,
) -> None:
    backup = KannelStandIn().start()
    try:
        shop = shop_with_fallback(
            tmp_path, db_url, refusing.url, f'name = "kannel"\nurl = "{backup.url}"'
        )
        service, message = send_through_the_fallback(shop, engine, sessions)
    finally:
        backup.stop()
    assert len(refusing.queries) == 1 and len(backup.queries) == 1
    dlr_url = backup.queries[-1]["dlr-url"]
    assert urlsplit(dlr_url).path == "/webhooks/backup/dlr"

    with TestClient(service.http_app()) as client:
        # Kannel calls the dlr-url it was given, with %d = 8: accepted by the SMSC.
        accepted = urlsplit(dlr_url.replace("%d", "8"))
        by_label = client.get(f"{accepted.path}?{accepted.query}")
        # A report on the provider's path (a URL configured by hand) reaches the row too.
        by_provider = client.get(
            "/webhooks/kannel/dlr", params={"id": message.id, "status": 1, "token": TOKEN}
        )
    assert (by_label.text, by_provider.text) == ("ok 1/1", "ok 1/1")
    with sessions() as session:
        assert session.get_one(Message, message.id).status == "delivered"
