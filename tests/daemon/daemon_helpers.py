"""A small shop on disk and `campaigner run` in its own process, for the daemon's tests.

Everything is relative to the real time, because the daemon runs on the system clock:
orders are paid three hours ago and the thank-you rule waits two, so they are due now.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from campaigner.customers.loader import refresh_customer_stats
from campaigner.db import create_engine_for, session_factory, upgrade
from campaigner.db.models import Customer, Order

# Seconds: a generous upper bound for anything a test waits for. Only a failing test waits
# that long, and a daemon that starts in 2 s on a quiet machine takes 30 s or more where CI
# runs several suites on 2 cores (load 20): its imports alone are seconds of CPU.
DEADLINE = 120.0
ADMIN_TOKEN = "admin-token-for-tests"  # server.webhook_token: /healthz details need it

T = TypeVar("T")

THANK_YOU_RULE = """\
description = "Thank-you SMS two hours after a paid order"
trigger = "post_purchase"
template = "thank_you.j2"
delay = "2h"
max_lateness = "1d"
transactional = true
"""
THANK_YOU_TEMPLATE = "Thanks {{ first_name }} for order {{ order.id }}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    condition: Callable[[], T], what: str, deadline: float = DEADLINE, every: float = 0.1
) -> T:
    """Poll until `condition()` is truthy; fail with `what` after `deadline` seconds."""
    end = time.monotonic() + deadline
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > end:
            raise AssertionError(f"gave up after {deadline:.0f}s waiting for {what}")
        time.sleep(every)


@dataclass
class Shop:
    """A project directory: config.toml, rules/, templates/messages/, and its database."""

    root: Path
    db_url: str
    gateway: dict[str, Any]
    daemon: dict[str, Any] = field(default_factory=dict)
    messages: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def rules(self) -> Path:
        return self.root / "rules"

    def write(self) -> Shop:
        (self.root / "templates" / "messages").mkdir(parents=True, exist_ok=True)
        self.rules.mkdir(exist_ok=True)
        (self.rules / "thank_you.toml").write_text(THANK_YOU_RULE)
        (self.root / "templates" / "messages" / "thank_you.j2").write_text(THANK_YOU_TEMPLATE)
        daemon = {"plan_interval": 1, "dispatch_interval": 1, "watch_interval": 0.5}
        daemon |= self.daemon
        lines = [
            "[database]",
            f"url = {json.dumps(self.db_url)}",
            "[paths]",
            'rules = "rules"',
            'templates = "templates/messages"',
            "[sending]",
            'window = "00:00-23:59"',
            "max_per_day = 0",
            "max_per_week = 0",
            "retry_base_seconds = 1",
            "[gateway]",
            *(f"{key} = {json.dumps(value)}" for key, value in self.gateway.items()),
            "[daemon]",
            *(f"{key} = {json.dumps(value)}" for key, value in daemon.items()),
            "plan_intervals = {}",
            "[messages]",
            *(f"{key} = {json.dumps(value)}" for key, value in self.messages.items()),
            "[server]",
            f"webhook_token = {json.dumps(ADMIN_TOKEN)}",
        ]
        self.config.write_text("\n".join(lines) + "\n")
        engine = create_engine_for(self.db_url)
        upgrade(engine)
        engine.dispose()
        return self

    @contextmanager
    def sessions(self) -> Iterator[sessionmaker[Session]]:
        engine = create_engine_for(self.db_url)
        try:
            yield session_factory(engine)
        finally:
            engine.dispose()

    def add_paid_orders(self, count: int, *, paid_ago: timedelta = timedelta(hours=3)) -> None:
        """`count` customers with one paid order each, `paid_ago` before now."""
        paid_at = datetime.now(UTC) - paid_ago
        with self.sessions() as sessions, sessions.begin() as session:
            first = (session.query(Customer).count() or 0) + 1
            numbers = range(first, first + count)
            session.execute(
                insert(Customer),
                [
                    {
                        "external_id": f"c{n}",
                        "first_name": f"Sara{n}",
                        "phone": f"+98912{n:07d}",
                        "locale": "en",
                        "timezone": "Asia/Tehran",
                        "marketing_consent": True,
                    }
                    for n in numbers
                ],
            )
            ids = dict(
                session.query(Customer.external_id, Customer.id).filter(
                    Customer.external_id.in_([f"c{n}" for n in numbers])
                )
            )
            session.execute(
                insert(Order),
                [
                    {
                        "external_id": f"o{n}",
                        "customer_id": ids[f"c{n}"],
                        "total": 100,
                        "currency": "USD",
                        "status": "paid",
                        "paid_at": paid_at,
                    }
                    for n in numbers
                ],
            )
            refresh_customer_stats(session, ids.values())

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "campaigner", "--config", str(self.config), *args]

    def run(self, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
        """A command in its own process; `env` adds CAMPAIGNER_* variables."""
        return subprocess.run(
            self.command(*args), capture_output=True, text=True, timeout=timeout, env=_env(**env)
        )


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPAIGNER_")}
    return env | extra


class DaemonProcess:
    """`campaigner run` in its own process, its log in a file, its HTTP port known."""

    def __init__(self, shop: Shop, log: Path, **env: str) -> None:
        self.shop = shop
        self.port = free_port()
        self.log_path = log
        self._log = log.open("w")
        self.process = subprocess.Popen(
            shop.command("run"),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=_env(CAMPAIGNER_SERVER__PORT=str(self.port), **env),
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", headers=headers or {}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def healthz(self, *, details: bool = True) -> tuple[int, dict[str, Any]]:
        """Status and body; with `details`, as the operator sees it (with the token)."""
        headers = {"X-Campaigner-Token": ADMIN_TOKEN} if details else {}
        status, body = self.get("/healthz", headers)
        return status, json.loads(body)

    def wait_healthy(self) -> dict[str, Any]:
        def healthy() -> dict[str, Any] | None:
            assert self.process.poll() is None, f"the daemon exited early:\n{self.log()}"
            try:
                status, body = self.healthz()
            except (OSError, ValueError):
                return None
            return body if status == 200 else None

        return wait_for(healthy, "/healthz to answer 200")

    def signal(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = DEADLINE) -> int:
        """SIGTERM and wait; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """The finaliser: whatever happened, this process is gone afterwards."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()


@contextmanager
def daemons(shop: Shop, directory: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """Start daemons with `start()`; every one is killed on the way out, even on failure."""
    started: list[DaemonProcess] = []

    def start(**env: str) -> DaemonProcess:
        process = DaemonProcess(shop, directory / f"daemon-{len(started)}.log", **env)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.kill()
