"""A real Kannel (bearerbox, smsbox, fakesmsc) on loopback: for the e2e test and bench/kannel.py.

Follows /work/shared/reference/kannel.md: the FIFO as fakesmsc's stdin (opened read-write, so
it never sees EOF), readiness by the status page, stopped by pid in the documented order.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, unquote_plus, unquote_to_bytes

BEARERBOX = "/usr/sbin/bearerbox"
SMSBOX = "/usr/sbin/smsbox"
FAKESMSC = "/usr/lib/kannel/test/fakesmsc"
USERNAME = "tester"
PASSWORD = "foobar"


def missing_binaries() -> list[str]:
    return [path for path in (BEARERBOX, SMSBOX, FAKESMSC) if not os.access(path, os.X_OK)]


def free_port() -> int:
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


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except OSError:
        return 0, ""


CONFIG = """group = core
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
log-file = "{workdir}/bearerbox.log"
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
{smsbox_options}log-file = "{workdir}/smsbox.log"
log-level = 1

group = sendsms-user
username = {username}
password = {password}
user-deny-ip = "*.*.*.*"
user-allow-ip = "127.0.0.1"
max-messages = 10
concatenation = true

group = sms-service
keyword = default
catch-all = true
get-url = "{get_url}"
max-messages = 0
"""


class KannelStack:
    """bearerbox + smsbox + fakesmsc on free loopback ports; `start(get_url)`, then `stop()`.

    The ports are chosen at construction, so a client can be configured before the start.
    """

    def __init__(self, workdir: Path, smsbox_options: str = "") -> None:
        self.workdir = workdir
        self.smsbox_options = smsbox_options  # extra lines for the smsbox group
        self.admin_port, self.box_port, self.smsc_port, self.sendsms_port = (
            free_port() for _ in range(4)
        )
        self.fifo = workdir / "mo.fifo"
        self.output = workdir / "fakesmsc.out"
        self.processes: list[tuple[subprocess.Popen[bytes], int]] = []
        self._fifo_fd: int | None = None

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.sendsms_port}"

    def status(self) -> str:
        code, text = http_get(f"http://127.0.0.1:{self.admin_port}/status.txt?password=statuspass")
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

    def smsbox_log(self) -> str:
        path = self.workdir / "smsbox.log"
        return path.read_text("utf-8", "replace") if path.exists() else ""

    def received_count(self) -> int:
        return self.output.read_bytes().count(b"Got message ")

    def inject(self, sender: str, receiver: str, text: str) -> None:
        payload = quote(text.encode("utf-16-be"))
        with self.fifo.open("w", encoding="ascii") as fifo:
            fifo.write(f"{sender} {receiver} ucs2 {payload}\n")

    def start(self, get_url: str) -> KannelStack:
        """Start all three; `get_url` is where inbound messages (MO) are forwarded."""
        config = self.workdir / "kannel.conf"
        config.write_text(
            CONFIG.format(
                admin=self.admin_port,
                box=self.box_port,
                smsc=self.smsc_port,
                sendsms=self.sendsms_port,
                workdir=self.workdir,
                username=USERNAME,
                password=PASSWORD,
                get_url=get_url,
                smsbox_options=self.smsbox_options,
            ),
            encoding="utf-8",
        )
        os.mkfifo(self.fifo)
        self._fifo_fd = os.open(self.fifo, os.O_RDWR)  # like `0<>mo.fifo`
        try:
            with (self.workdir / "bearerbox.stdout").open("wb") as log:
                bearer = subprocess.Popen(
                    [BEARERBOX, "-v", "1", str(config)], stdout=log, stderr=subprocess.STDOUT
                )
            self.processes.append((bearer, signal.SIGTERM))
            wait_until(self.status, "bearerbox status page")
            with (self.workdir / "smsbox.stdout").open("wb") as log:
                smsbox = subprocess.Popen(
                    [SMSBOX, "-v", "1", str(config)], stdout=log, stderr=subprocess.STDOUT
                )
            self.processes.append((smsbox, signal.SIGTERM))
            wait_until(lambda: http_get(f"{self.sendsms_url}/")[0] != 0, "smsbox sendsms port")
            wait_until(lambda: "smsbox" in self.status().lower(), "smsbox registered")
            with self.output.open("wb") as out:
                fake = subprocess.Popen(
                    [FAKESMSC, "-H", "127.0.0.1", "-r", str(self.smsc_port)],
                    stdin=self._fifo_fd,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            self.processes.append((fake, signal.SIGINT))
            wait_until(lambda: "(online" in self.status(), "fakesmsc online")
        except BaseException:
            self.stop()
            raise
        return self

    def pids(self) -> list[int]:
        return [process.pid for process, _sig in self.processes]

    def stop(self) -> None:
        # smsbox first, then the fake SMSC, bearerbox last (as kannel.md says).
        order = {SMSBOX: 0, FAKESMSC: 1, BEARERBOX: 2}
        for process, sig in sorted(self.processes, key=lambda item: order[str(item[0].args[0])]):
            _stop(process, sig)
        self.processes = []
        if self._fifo_fd is not None:
            os.close(self._fifo_fd)
            self._fifo_fd = None


def _stop(process: subprocess.Popen[bytes], sig: int) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
