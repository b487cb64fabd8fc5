"""A real Kannel (bearerbox, smsbox, fakesmsc) on loopback, talking to our webhook server.

Follows docs in shared/reference/kannel.md: FIFO as fakesmsc's stdin, readiness by status page.
Skipped where the Kannel binaries are absent, unless CAMPAIGNER_REQUIRE_KANNEL=1 (CI).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, unquote_plus, unquote_to_bytes

import pytest
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

BEARERBOX = "/usr/sbin/bearerbox"
SMSBOX = "/usr/sbin/smsbox"
FAKESMSC = "/usr/lib/kannel/test/fakesmsc"
TOKEN = "e2e-webhook-token"
SENDER = "98100"

pytestmark = pytest.mark.slow


def _require_kannel() -> None:
    missing = [path for path in (BEARERBOX, SMSBOX, FAKESMSC) if not os.access(path, os.X_OK)]
    if missing:
        reason = (
            f"Kannel binaries absent ({', '.join(missing)}): apt-get install kannel kannel-extras"
        )
        if os.environ.get("CAMPAIGNER_REQUIRE_KANNEL") == "1":
            pytest.fail(reason + " (CAMPAIGNER_REQUIRE_KANNEL=1)")
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], object], what: str, timeout: float = 15.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except OSError:
        return 0, ""


@dataclass
class Kannel:
    admin_port: int
    sendsms_port: int
    fifo: Path
    output: Path

    def status(self) -> str:
        code, text = _get(f"http://127.0.0.1:{self.admin_port}/status.txt?password=statuspass")
        return text if code == 200 else ""

    def received(self) -> list[tuple[str, str, str]]:
        """(sender, receiver, text) for each message fakesmsc got."""
        found = []
        pattern = re.compile(r"Got message \d+: <(\S+) (\S+) (\S+) (.*)>")
        for match in pattern.finditer(self.output.read_text("utf-8", "replace")):
            sender, receiver, kind, payload = match.groups()
            if kind == "ucs-2":
                text = unquote_to_bytes(payload.replace("+", "%20")).decode("utf-16-be")
            else:
                text = unquote_plus(payload)
            found.append((sender, receiver, text))
        return found

    def inject(self, sender: str, receiver: str, text: str) -> None:
        payload = quote(text.encode("utf-16-be"))
        with self.fifo.open("w", encoding="ascii") as fifo:
            fifo.write(f"{sender} {receiver} ucs2 {payload}\n")


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


def _stop(process: subprocess.Popen[bytes], sig: int) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture
def kannel(
    tmp_path: Path, webhook_server: tuple[BackgroundServer, dict[str, Gateway]]
) -> Iterator[tuple[Kannel, KannelGateway]]:
    _require_kannel()
    server, gateways = webhook_server
    admin, box, smsc, sendsms = (_free_port() for _ in range(4))
    gateway = KannelGateway(
        GatewaySettings(
            name="kannel",
            url=f"http://127.0.0.1:{sendsms}",
            username="tester",
            password="foobar",
            sender=SENDER,
        ),
        webhook_url=f"{server.url}/webhooks/kannel",
        webhook_token=TOKEN,
    )
    gateways["kannel"] = gateway
    config = tmp_path / "kannel.conf"
    config.write_text(
        f"""group = core
admin-port = {admin}
admin-interface = 127.0.0.1
admin-password = adminpass
status-password = statuspass
admin-deny-ip = "*.*.*.*"
admin-allow-ip = "127.0.0.1"
smsbox-port = {box}
smsbox-interface = 127.0.0.1
box-deny-ip = "*.*.*.*"
box-allow-ip = "127.0.0.1"
dlr-storage = internal
log-file = "{tmp_path}/bearerbox.log"
log-level = 1

group = smsc
smsc = fake
smsc-id = fake1
our-host = 127.0.0.1
port = {smsc}
connect-allow-ip = "127.0.0.1"

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {box}
sendsms-port = {sendsms}
sendsms-interface = 127.0.0.1
mo-recode = true
log-file = "{tmp_path}/smsbox.log"
log-level = 1

group = sendsms-user
username = tester
password = foobar
user-deny-ip = "*.*.*.*"
user-allow-ip = "127.0.0.1"
max-messages = 10
concatenation = true

group = sms-service
keyword = default
catch-all = true
get-url = "{gateway.inbound_get_url()}"
max-messages = 0
""",
        encoding="utf-8",
    )
    fifo = tmp_path / "mo.fifo"
    os.mkfifo(fifo)
    output = tmp_path / "fakesmsc.out"
    state = Kannel(admin, sendsms, fifo, output)
    started: list[tuple[subprocess.Popen[bytes], int]] = []
    logs = [(tmp_path / f"{name}.stdout").open("wb") for name in ("bearerbox", "smsbox")]
    fifo_fd = os.open(fifo, os.O_RDWR)  # like `0<>mo.fifo`: fakesmsc never sees EOF
    try:
        bearer = subprocess.Popen(
            [BEARERBOX, "-v", "1", str(config)], stdout=logs[0], stderr=subprocess.STDOUT
        )
        started.append((bearer, signal.SIGTERM))
        wait_until(state.status, "bearerbox status page")
        smsbox = subprocess.Popen(
            [SMSBOX, "-v", "1", str(config)], stdout=logs[1], stderr=subprocess.STDOUT
        )
        started.append((smsbox, signal.SIGTERM))
        wait_until(lambda: _get(f"http://127.0.0.1:{sendsms}/")[0] != 0, "smsbox sendsms port")
        wait_until(lambda: "smsbox" in state.status().lower(), "smsbox registered")
        with output.open("wb") as out:
            fake = subprocess.Popen(
                [FAKESMSC, "-H", "127.0.0.1", "-r", str(smsc)],
                stdin=fifo_fd,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append((fake, signal.SIGINT))
        wait_until(lambda: "(online" in state.status(), "fakesmsc online")
        yield state, gateway
    finally:
        # smsbox first, then the fake SMSC, bearerbox last (as kannel.md says).
        order = {SMSBOX: 0, FAKESMSC: 1, BEARERBOX: 2}
        for process, sig in sorted(started, key=lambda item: order[str(item[0].args[0])]):
            _stop(process, sig)
        os.close(fifo_fd)
        gateway.close()
        for handle in logs:
            handle.close()


def test_messages_reports_and_opt_out_through_a_real_kannel(
    kannel: tuple[Kannel, KannelGateway], webhook_db: sessionmaker[Session]
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
