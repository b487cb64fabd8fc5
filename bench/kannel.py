"""Campaigner against Kannel's own rate, side by side in one run, with and without DLRs.

Starts its own Kannel (bearerbox + smsbox + fakesmsc on loopback, the config of the Kannel
e2e test), then on that same Kannel:

1. `ab -k -c 16` on sendsms with a Persian text: Kannel alone, the ceiling;
2. Campaigner draining queued messages through the `kannel` gateway: real rules and
   templates (the birthday wish issues a coupon per message, the thank-you loads its order);
3. both again with delivery reports: `ab` with a `dlr-url` to a minimal receiver, timed to
   the last "delivered" report; Campaigner with its own webhook server in its own process
   (as `campaigner run` serves it), timed to the last report applied to the ledger.

Campaigner runs in a fresh process on a fresh SQLite database each time. It prints both
figures, the ratios and the machine's load before and after.

    .venv/bin/python bench/kannel.py                          # 5,000 messages
    .venv/bin/python bench/kannel.py --messages 20000 --max-in-flight 16
    .venv/bin/python bench/kannel.py --messages 3000 --profile prof   # py-spy stacks in prof/
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, urlencode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from bulk_ledger import plan_sample_messages, sample_project  # noqa: E402
from kannel_stack import PASSWORD, USERNAME, KannelStack, free_port, missing_binaries  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from campaigner.clock import SystemClock  # noqa: E402
from campaigner.config import GatewaySettings, Settings  # noqa: E402
from campaigner.db import create_engine_for, session_factory  # noqa: E402
from campaigner.db.models import Message, MessageStatus  # noqa: E402
from campaigner.gateways.kannel import KannelGateway  # noqa: E402
from campaigner.runtime import Runtime  # noqa: E402
from campaigner.server.app import create_app  # noqa: E402
from campaigner.server.serve import BackgroundServer  # noqa: E402

T = TypeVar("T")
SENDER = "98100"
TOKEN = "bench-webhook-token"
# What the birthday template renders to, give or take the name and code: two UCS-2 parts.
AB_TEXT = "سلام سارا، تولدتان مبارک! 🎂\nهدیه فروشگاه: ۱۵٪ تخفیف با کد BDAY-7K2M9Q تا ۱۵ آذر"


# -- Kannel alone -------------------------------------------------------------------------


def sendsms_query(extra: dict[str, str] | None = None) -> str:
    params = {
        "username": USERNAME,
        "password": PASSWORD,
        "to": "989121234567",
        "from": SENDER,
        "text": AB_TEXT,
        "charset": "UTF-8",
        "coding": "2",
        **(extra or {}),
    }
    return urlencode(params, quote_via=quote)


def run_ab(url: str, messages: int, concurrency: int) -> float:
    """ab's requests per second; fails loudly if any request was not answered 2xx."""
    done = subprocess.run(
        ["ab", "-q", "-k", "-c", str(concurrency), "-n", str(messages), url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for bad in ("Failed requests", "Non-2xx responses"):
        found = re.search(rf"{bad}:\s+(\d+)", done)
        if found and int(found[1]):
            raise SystemExit(f"ab: {bad.lower()}: {found[1]}\n{done}")
    match = re.search(r"Requests per second:\s+([\d.]+)", done)
    if match is None:
        raise SystemExit(f"ab printed no rate:\n{done}")
    return float(match[1])


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds these processes have used so far (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def kannel_alone(stack: KannelStack, run: Callable[[], T]) -> tuple[T, float]:
    """`run()` and the CPU seconds Kannel (its three processes) and ab used meanwhile."""
    before = cpu_seconds(stack.pids()) + children_cpu()
    result = run()
    return result, cpu_seconds(stack.pids()) + children_cpu() - before


class ReportCounter:
    """A minimal keep-alive HTTP receiver for Kannel's DLR callbacks: counts "delivered"
    reports and notes when the last one came. As cheap as a receiver gets in Python."""

    def __init__(self) -> None:
        self.port = free_port()
        self.delivered = 0
        self.last_at = 0.0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> ReportCounter:
        self._thread.start()
        self._ready.wait(5)
        return self

    def reset(self) -> None:
        self.delivered, self.last_at = 0, 0.0

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        counter = self

        class Protocol(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport: asyncio.Transport = transport  # type: ignore[assignment]
                self.buffer = b""

            def data_received(self, data: bytes) -> None:
                self.buffer += data
                while b"\r\n\r\n" in self.buffer:
                    head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
                    if b"status=1 " in head or b"status=1&" in head:
                        counter.delivered += 1
                        counter.last_at = time.perf_counter()
                    self.transport.write(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"
                    )

        server = self._loop.run_until_complete(
            self._loop.create_server(Protocol, "127.0.0.1", self.port, backlog=2048)
        )
        self._ready.set()
        self._loop.run_forever()
        server.close()


def kannel_with_reports(
    stack: KannelStack, counter: ReportCounter, messages: int, concurrency: int
) -> tuple[float, float]:
    """(ab's requests/s, messages/s up to the last "delivered" report)."""
    counter.reset()
    dlr_url = f"http://127.0.0.1:{counter.port}/dlr?status=%d"
    url = f"{stack.sendsms_url}/cgi-bin/sendsms?" + sendsms_query(
        {"dlr-mask": "31", "dlr-url": dlr_url}
    )
    started = time.perf_counter()
    rate = run_ab(url, messages, concurrency)
    deadline = time.monotonic() + 120
    while counter.delivered < messages and time.monotonic() < deadline:
        time.sleep(0.01)
    if counter.delivered < messages:
        raise SystemExit(f"Kannel delivered {counter.delivered} reports of {messages}")
    return rate, messages / (counter.last_at - started)


def wait_for_delivery(stack: KannelStack, total: int) -> None:
    """Until fakesmsc has every message so far: no phase runs into the last one's queue."""
    deadline = time.monotonic() + 120
    while stack.received_count() < total:
        if time.monotonic() > deadline:
            raise SystemExit(f"fakesmsc got {stack.received_count()} of {total} messages")
        time.sleep(0.05)


# -- Campaigner (in its own process) ------------------------------------------------------


def campaigner_settings(workdir: Path, sendsms_url: str, in_flight: int, port: int) -> Settings:
    gateway = GatewaySettings(
        name="kannel",
        url=sendsms_url,
        username=USERNAME,
        password=PASSWORD,
        sender=SENDER,
        max_in_flight=in_flight,
    )
    settings = sample_project(workdir, gateway)
    server = Settings.model_validate({"server": {"port": port, "webhook_token": TOKEN}}).server
    return settings.model_copy(update={"server": server})


def campaigner_run(
    sendsms_url: str, messages: int, in_flight: int, reports: bool
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        settings = campaigner_settings(Path(tmp), sendsms_url, in_flight, port)
        engine = create_engine_for(settings.database.url)
        plan_sample_messages(session_factory(engine), messages)
        engine.dispose()
        engine = create_engine_for(settings.database.url)
        sessions = session_factory(engine)
        clock = SystemClock()
        # Without reports, a gateway with no webhook URL: Kannel is asked for no DLR.
        gateway = None if reports else KannelGateway(settings.gateway)
        runtime = Runtime.build(settings, clock=clock, sessions=sessions, gateway=gateway)
        server = None
        if reports:
            app = create_app(
                settings=settings, sessions=sessions, clock=clock, gateways=runtime.gateways
            )
            server = BackgroundServer(app, port=port).start()
        # As `campaigner run` does once it has built everything (imported here: the module
        # also serves bench/kannel_cpu.py's runs of versions without it).
        from campaigner.daemon.heap import settle_after_start

        settle_after_start()
        print("ready", flush=True)
        sys.stdin.readline()  # the parent may attach a profiler now
        started = time.perf_counter()
        cpu = time.process_time()
        report = runtime.drain()
        last_send = time.perf_counter()
        last_report = last_send
        if reports:
            deadline = time.monotonic() + 120
            while _delivered(sessions) < messages and time.monotonic() < deadline:
                time.sleep(0.01)
            last_report = time.perf_counter()
            delivered = _delivered(sessions)
            if delivered < messages:
                raise SystemExit(f"campaigner: {delivered} reports applied of {messages}")
        if server is not None:
            server.stop()
        runtime.close()
        engine.dispose()
    if report.sent != messages:
        raise SystemExit(f"campaigner: sent {report.sent} of {messages} ({report})")
    return {
        "messages": float(messages),
        "send_seconds": last_send - started,
        "report_seconds": last_report - started,
        "cpu_seconds": time.process_time() - cpu,
    }


def _delivered(sessions: object) -> int:
    with sessions() as session:  # type: ignore[operator]
        return int(
            session.scalar(select(func.count()).where(Message.status == MessageStatus.DELIVERED))
            or 0
        )


def campaigner(
    stack: KannelStack, messages: int, in_flight: int, reports: bool, profile: Path | None
) -> dict[str, float]:
    command = [sys.executable, __file__, "--campaigner", stack.sendsms_url]
    command += ["--messages", str(messages), "--max-in-flight", str(in_flight)]
    if reports:
        command.append("--reports")
    worker = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert worker.stdin is not None and worker.stdout is not None
    assert worker.stdout.readline().strip() == "ready"
    spy = None
    if profile is not None:
        profile.mkdir(exist_ok=True)
        name = "with-dlr" if reports else "no-dlr"
        spy = subprocess.Popen(
            [
                *(str(Path(sys.executable).parent / "py-spy"), "record", "--gil", "-r", "200"),
                *("-f", "raw", "-o", str(profile / f"{name}.txt"), "-p", str(worker.pid)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)
    worker.stdin.write("go\n")
    worker.stdin.flush()
    out, _ = worker.communicate(timeout=600)
    if worker.returncode != 0:
        raise SystemExit(f"campaigner worker failed ({worker.returncode})")
    if spy is not None:
        spy.wait(timeout=60)
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def load() -> str:
    return os.getloadavg().__repr__()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=16, help="ab -c")
    parser.add_argument("--max-in-flight", type=int, default=16, help="gateway.max_in_flight")
    parser.add_argument("--profile", type=Path, help="py-spy each Campaigner run into this dir")
    parser.add_argument("--campaigner", metavar="SENDSMS_URL", help=argparse.SUPPRESS)
    parser.add_argument("--reports", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.campaigner:
        result = campaigner_run(args.campaigner, args.messages, args.max_in_flight, args.reports)
        print(json.dumps(result))
        return
    if missing_binaries():
        raise SystemExit(f"Kannel binaries absent: {', '.join(missing_binaries())}")
    if shutil.which("ab") is None:
        raise SystemExit("ab absent: apt-get install apache2-utils")
    n = args.messages
    print(
        f"load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min), "
        f"{os.cpu_count()} cores; {n:,} messages per run"
    )
    with tempfile.TemporaryDirectory() as tmp:
        stack = KannelStack(Path(tmp)).start(f"http://127.0.0.1:{free_port()}/inbound")
        counter = ReportCounter().start()
        try:
            url = f"{stack.sendsms_url}/cgi-bin/sendsms?" + sendsms_query()
            ab_plain, ab_plain_cpu = kannel_alone(stack, lambda: run_ab(url, n, args.concurrency))
            wait_for_delivery(stack, n)
            ours = campaigner(stack, n, args.max_in_flight, False, args.profile)
            wait_for_delivery(stack, 2 * n)
            (ab_accept, ab_dlr), ab_dlr_cpu = kannel_alone(
                stack, lambda: kannel_with_reports(stack, counter, n, args.concurrency)
            )
            wait_for_delivery(stack, 3 * n)
            ours_dlr = campaigner(stack, n, args.max_in_flight, True, args.profile)
            wait_for_delivery(stack, 4 * n)
        finally:
            stack.stop()
    plain = n / ours["send_seconds"]
    with_dlr = n / ours_dlr["report_seconds"]
    lag = ours_dlr["report_seconds"] - ours_dlr["send_seconds"]
    print(f"{'':<34} {'msgs/s':>9}")
    print(f"{'Kannel alone, ab -c ' + str(args.concurrency) + ', no DLR':<34} {ab_plain:>9,.0f}")
    print(f"{'Campaigner, no DLR':<34} {plain:>9,.0f}   {plain / ab_plain:>5.0%} of Kannel")
    print(f"{'Kannel alone, with DLRs':<34} {ab_dlr:>9,.0f}   (ab accepted {ab_accept:,.0f}/s)")
    print(
        f"{'Campaigner, with DLRs':<34} {with_dlr:>9,.0f}   {with_dlr / ab_dlr:>5.0%} of Kannel"
        f"   (sent at {n / ours_dlr['send_seconds']:,.0f}/s)"
    )
    print(f"last DLR applied {lag:.2f} s after the last send")
    print("CPU per message (user + system, all threads; the wall rates above share 2 cores):")
    print(f"  Kannel + ab, no DLR      {1000 * ab_plain_cpu / n:6.2f} ms")
    print(f"  Campaigner, no DLR       {1000 * ours['cpu_seconds'] / n:6.2f} ms")
    print(f"  Kannel + ab, with DLRs   {1000 * ab_dlr_cpu / n:6.2f} ms")
    dlr_cpu = 1000 * ours_dlr["cpu_seconds"] / n
    print(f"  Campaigner, with DLRs    {dlr_cpu:6.2f} ms (its webhooks included)")
    print(f"load after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min)")


if __name__ == "__main__":
    main()
