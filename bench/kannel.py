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

With several `--max-in-flight` values and `--runs`, each run measures Kannel alone and
Campaigner with DLRs once per value, side by side (`ab` just before each Campaigner run),
so a change in the machine's load falls on both figures of a ratio alike; a summary of the
ratios per value ends the output. `--smsbox-option` adds lines to smsbox's configuration
for both (fair: the same Kannel for `ab` and for Campaigner). `--db-url` puts Campaigner's
ledger on that database (its tables are dropped and made again for each run).

    .venv/bin/python bench/kannel.py                          # 5,000 messages
    .venv/bin/python bench/kannel.py --messages 20000 --max-in-flight 16
    .venv/bin/python bench/kannel.py --max-in-flight 64 128 256 --runs 3 --skip-plain
    .venv/bin/python bench/kannel.py --db-url postgresql+psycopg://postgres@127.0.0.1/bench_x
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
from sqlalchemy import create_engine, func, select, text  # noqa: E402

from campaigner.clock import SystemClock  # noqa: E402
from campaigner.config import GatewaySettings, Settings  # noqa: E402
from campaigner.db import create_engine_for, session_factory, upgrade  # noqa: E402
from campaigner.db.models import Base, Message, MessageStatus  # noqa: E402
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
    reports and notes when the last one came. As cheap as a receiver gets in Python; with a
    `delay`, each answer leaves that many seconds late (bench/sendsms_latency.py)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
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
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"

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
                    if counter.delay:
                        counter._loop.call_later(counter.delay, self.transport.write, answer)
                    else:
                        self.transport.write(answer)

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


def campaigner_settings(
    workdir: Path, sendsms_url: str, in_flight: int, port: int, db_url: str | None = None
) -> Settings:
    gateway = GatewaySettings(
        name="kannel",
        url=sendsms_url,
        username=USERNAME,
        password=PASSWORD,
        sender=SENDER,
        max_in_flight=in_flight,
    )
    settings = sample_project(workdir, gateway, db_url)
    server = Settings.model_validate({"server": {"port": port, "webhook_token": TOKEN}}).server
    return settings.model_copy(update={"server": server})


def empty_database(db_url: str) -> None:
    """Drop Campaigner's tables in `db_url` and make them again: a fresh ledger per run."""
    engine = create_engine(db_url)
    with engine.begin() as connection:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        connection.execute(text(f"DROP TABLE IF EXISTS {tables}, alembic_version CASCADE"))
    engine.dispose()
    engine = create_engine_for(db_url)
    upgrade(engine)
    engine.dispose()


def campaigner_run(
    sendsms_url: str, messages: int, in_flight: int, reports: bool, db_url: str | None
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        settings = campaigner_settings(Path(tmp), sendsms_url, in_flight, port, db_url)
        if db_url is not None:
            empty_database(db_url)
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
    stack: KannelStack,
    messages: int,
    in_flight: int,
    reports: bool,
    profile: Path | None,
    db_url: str | None,
) -> dict[str, float]:
    command = [sys.executable, __file__, "--campaigner", stack.sendsms_url]
    command += ["--messages", str(messages), "--max-in-flight", str(in_flight)]
    if reports:
        command.append("--reports")
    if db_url:
        command += ["--db-url", db_url]
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
    return json.loads(out.strip().splitlines()[-1])


def run_once(
    stack: KannelStack, counter: ReportCounter, args: argparse.Namespace, sent: int
) -> tuple[list[str], dict[int, float], int]:
    """One run: (lines to print, with-DLR ratio per max_in_flight, messages sent so far)."""
    n = args.messages
    lines = [f"load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min)"]
    if not args.skip_plain:
        url = f"{stack.sendsms_url}/cgi-bin/sendsms?" + sendsms_query()
        ab_plain, ab_cpu = kannel_alone(stack, lambda: run_ab(url, n, args.concurrency))
        sent += n
        wait_for_delivery(stack, sent)
        first = args.max_in_flight[0]
        ours = campaigner(stack, n, first, False, args.profile, args.db_url)
        sent += n
        wait_for_delivery(stack, sent)
        plain = n / ours["send_seconds"]
        lines += [
            f"{'Kannel alone, ab -c ' + str(args.concurrency) + ', no DLR':<38} {ab_plain:>9,.0f}"
            f"   CPU {1000 * ab_cpu / n:.2f} ms/msg (Kannel + ab)",
            f"{'Campaigner, no DLR, ' + str(first) + ' in flight':<38} {plain:>9,.0f}"
            f"   {plain / ab_plain:>5.0%} of Kannel   CPU {1000 * ours['cpu_seconds'] / n:.2f}"
            " ms/msg",
        ]
    ratios: dict[int, float] = {}
    for in_flight in args.max_in_flight:
        (ab_accept, ab_dlr), ab_dlr_cpu = kannel_alone(
            stack, lambda: kannel_with_reports(stack, counter, n, args.concurrency)
        )
        sent += n
        wait_for_delivery(stack, sent)
        ours_dlr = campaigner(stack, n, in_flight, True, args.profile, args.db_url)
        sent += n
        wait_for_delivery(stack, sent)
        with_dlr = n / ours_dlr["report_seconds"]
        lag = ours_dlr["report_seconds"] - ours_dlr["send_seconds"]
        ratios[in_flight] = with_dlr / ab_dlr
        lines += [
            f"{'Kannel alone, with DLRs':<38} {ab_dlr:>9,.0f}   (ab accepted {ab_accept:,.0f}/s)"
            f"   CPU {1000 * ab_dlr_cpu / n:.2f} ms/msg (Kannel + ab)",
            f"{'Campaigner, with DLRs, ' + str(in_flight) + ' in flight':<38} {with_dlr:>9,.0f}"
            f"   {with_dlr / ab_dlr:>5.0%} of Kannel   (sent at "
            f"{n / ours_dlr['send_seconds']:,.0f}/s; last DLR applied {lag:.2f} s after the "
            f"last send; CPU {1000 * ours_dlr['cpu_seconds'] / n:.2f} ms/msg, webhooks included)",
        ]
    lines.append(f"load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min)")
    return lines, ratios, sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=16, help="ab -c")
    parser.add_argument(
        "--max-in-flight",
        type=int,
        nargs="+",
        default=[16],
        help="gateway.max_in_flight; several values are measured one after another",
    )
    parser.add_argument("--runs", type=int, default=1, help="repeat the whole measurement")
    parser.add_argument("--skip-plain", action="store_true", help="only the with-DLR figures")
    parser.add_argument(
        "--db-url", help="Campaigner's ledger here, not a fresh SQLite (its tables are dropped!)"
    )
    parser.add_argument(
        "--smsbox-option",
        action="append",
        default=[],
        metavar="LINE",
        help="a line added to smsbox's group, e.g. 'immediate-sendsms-reply = true'",
    )
    parser.add_argument("--profile", type=Path, help="py-spy each Campaigner run into this dir")
    parser.add_argument("--campaigner", metavar="SENDSMS_URL", help=argparse.SUPPRESS)
    parser.add_argument("--reports", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.campaigner:
        result = campaigner_run(
            args.campaigner, args.messages, args.max_in_flight[0], args.reports, args.db_url
        )
        print(json.dumps(result))
        return
    if missing_binaries():
        raise SystemExit(f"Kannel binaries absent: {', '.join(missing_binaries())}")
    if shutil.which("ab") is None:
        raise SystemExit("ab absent: apt-get install apache2-utils")
    print(
        f"{os.cpu_count()} cores; {args.messages:,} messages per figure; "
        f"Campaigner on {args.db_url or 'SQLite'}; smsbox options: {args.smsbox_option or '-'}"
    )
    options = "".join(f"{line}\n" for line in args.smsbox_option)
    summary: dict[int, list[float]] = {value: [] for value in args.max_in_flight}
    with tempfile.TemporaryDirectory() as tmp:
        stack = KannelStack(Path(tmp), smsbox_options=options)
        stack.start(f"http://127.0.0.1:{free_port()}/inbound")
        counter = ReportCounter().start()
        sent = 0
        try:
            for run in range(1, args.runs + 1):
                lines, ratios, sent = run_once(stack, counter, args, sent)
                print(f"-- run {run}: {lines[0]}")
                print("\n".join(lines[1:]), flush=True)
                for value, ratio in ratios.items():
                    summary[value].append(ratio)
        finally:
            stack.stop()
    print("with DLRs, Campaigner / Kannel alone, per run:")
    for value, found in summary.items():
        shares = ", ".join(f"{ratio:.0%}" for ratio in found)
        print(f"  max_in_flight {value:>4}: {shares}   (lowest {min(found):.0%})")


if __name__ == "__main__":
    main()
