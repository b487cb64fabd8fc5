"""How long Kannel takes to answer one `sendsms`, with and without delivery reports, by receiver.

`bench/kannel.py` found smsbox answering each request in 65-100 ms with DLRs on (16 in
flight) against well under a millisecond without. This separates Kannel's own behaviour
from ours: a plain client (threads, one keep-alive connection each, no Campaigner code)
keeps N requests in flight on a fresh Kannel stack and times every answer, with the
`dlr-url` pointing at

- `none`: no DLR asked for (no dlr-mask, no dlr-url);
- `fast`: a minimal asyncio receiver that answers at once;
- `slow:MS`: the same receiver answering each callback after MS milliseconds;
- `campaigner`: Campaigner's own webhook server (`create_app`, as `campaigner run`
  serves it) in its own process, on a fresh SQLite ledger whose rows the reports name.

For each it prints the answers' latency (p50, p90, p99, max), the sendsms rate, and the
time from the first request to the last "delivered" report.

    .venv/bin/python bench/sendsms_latency.py --in-flight 16 64 --receivers none fast campaigner
    .venv/bin/python bench/sendsms_latency.py --smsbox-option 'immediate-sendsms-reply = true'
"""

from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from kannel import TOKEN, ReportCounter, campaigner_settings, sendsms_query  # noqa: E402
from kannel_stack import KannelStack, free_port, missing_binaries  # noqa: E402


class Receiver(ReportCounter):
    """Answers every callback 200 after `delay` seconds; counts "delivered" reports."""

    def __init__(self, delay: float) -> None:
        super().__init__(delay)
        self.start()

    def dlr_url(self, message_id: int) -> str:
        return f"http://127.0.0.1:{self.port}/dlr?id={message_id}&status=%d"

    def wait(self, count: int, timeout: float = 60) -> float | None:
        deadline = time.monotonic() + timeout
        while self.delivered < count and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.last_at if self.delivered >= count else None

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)


class CampaignerReceiver:
    """Campaigner's webhook server in its own process, over `messages` planned rows."""

    def __init__(self, messages: int) -> None:
        self.port = free_port()
        command = [sys.executable, __file__, "--serve", str(self.port), "--messages", str(messages)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None and self.process.stdin is not None
        assert self.process.stdout.readline().strip() == "ready"

    def dlr_url(self, message_id: int) -> str:
        return (
            f"http://127.0.0.1:{self.port}/webhooks/kannel/dlr?id={message_id}"
            f"&status=%d&token={quote(TOKEN)}"
        )

    def wait(self, count: int, timeout: float = 60) -> float | None:
        """The wall time at which the last report was applied, by the server's own clock."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{count} {timeout}\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        return None if answer == "none" else float(answer)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def serve(port: int, messages: int) -> None:
    """The `campaigner` receiver's own process: plan, serve, report when all are delivered."""
    from bulk_ledger import plan_sample_messages
    from sqlalchemy import func, select, update

    from campaigner.clock import SystemClock
    from campaigner.db import create_engine_for, session_factory
    from campaigner.db.models import Message, MessageStatus
    from campaigner.runtime import Runtime
    from campaigner.server.app import create_app
    from campaigner.server.serve import BackgroundServer

    with tempfile.TemporaryDirectory() as tmp:
        settings = campaigner_settings(Path(tmp), "http://127.0.0.1:9", 4, port)
        engine = create_engine_for(settings.database.url)
        sessions = session_factory(engine)
        plan_sample_messages(sessions, messages)
        clock = SystemClock()
        with sessions.begin() as session:  # as the dispatcher leaves them: sent through kannel
            session.execute(
                update(Message).values(
                    status=MessageStatus.SENT, gateway="kannel", sent_at=clock.now()
                )
            )
        runtime = Runtime.build(settings, clock=clock, sessions=sessions)
        app = create_app(
            settings=settings, sessions=sessions, clock=clock, gateways=runtime.gateways
        )
        server = BackgroundServer(app, port=port).start()
        print("ready", flush=True)
        for line in sys.stdin:
            count, timeout = int(line.split()[0]), float(line.split()[1])
            deadline = time.monotonic() + timeout
            while True:
                with sessions() as session:
                    delivered = (
                        session.scalar(
                            select(func.count()).where(Message.status == MessageStatus.DELIVERED)
                        )
                        or 0
                    )
                if delivered >= count or time.monotonic() > deadline:
                    break
                time.sleep(0.005)
            print(time.time() if delivered >= count else "none", flush=True)
        server.stop()
        runtime.close()
        engine.dispose()


def drive(
    stack: KannelStack,
    receiver: Receiver | CampaignerReceiver | None,
    messages: int,
    in_flight: int,
    dlr_mask: int,
) -> tuple[list[float], float, float]:
    """(each answer's latency, seconds for all answers, wall time the first request left)."""
    latencies: list[float] = []
    lock = threading.Lock()
    ids = iter(range(1, messages + 1))
    failures: list[str] = []

    # Connected one after another first: smsbox's listen backlog is 10, and a SYN it drops
    # costs a second, which is no answer's latency.
    connections = []
    for _ in range(in_flight):
        connection = http.client.HTTPConnection("127.0.0.1", stack.sendsms_port, timeout=30)
        connection.connect()
        connections.append(connection)

    def worker(connection: http.client.HTTPConnection) -> None:
        mine: list[float] = []
        while True:
            with lock:
                message_id = next(ids, None)
            if message_id is None:
                break
            extra = {}
            if receiver is not None:
                extra = {"dlr-mask": str(dlr_mask), "dlr-url": receiver.dlr_url(message_id)}
            path = "/cgi-bin/sendsms?" + sendsms_query(extra)
            started = time.perf_counter()
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
            mine.append(time.perf_counter() - started)
            if response.status != 202:
                failures.append(f"{response.status} {body[:80]!r}")
        connection.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(c,)) for c in connections]
    first_wall = time.time()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return latencies, time.perf_counter() - started, first_wall


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(stack: KannelStack, kind: str, messages: int, in_flight: int, dlr_mask: int) -> str:
    receiver: Receiver | CampaignerReceiver | None = None
    if kind == "fast":
        receiver = Receiver(0.0)
    elif kind.startswith("slow:"):
        receiver = Receiver(float(kind.split(":", 1)[1]) / 1000)
    elif kind == "campaigner":
        receiver = CampaignerReceiver(messages)
    before = stack.received_count()
    try:
        started = time.perf_counter()
        latencies, seconds, first_wall = drive(stack, receiver, messages, in_flight, dlr_mask)
        to_last = ""
        if isinstance(receiver, Receiver):
            last = receiver.wait(messages)
            to_last = f"{last - started:6.2f}" if last else "  lost"
        elif isinstance(receiver, CampaignerReceiver):
            last_wall = receiver.wait(messages)
            to_last = f"{last_wall - first_wall:6.2f}" if last_wall else "  lost"
    finally:
        if receiver is not None:
            receiver.close()
    deadline = time.monotonic() + 60
    while stack.received_count() < before + messages and time.monotonic() < deadline:
        time.sleep(0.05)
    ms = [1000 * value for value in latencies]
    return (
        f"{kind:<12} {in_flight:>4} {percentile(ms, 0.5):8.1f} {percentile(ms, 0.9):8.1f} "
        f"{percentile(ms, 0.99):8.1f} {max(ms):8.1f} {messages / seconds:9,.0f} {to_last:>10}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, nargs="+", default=[16, 64])
    parser.add_argument(
        "--receivers", nargs="+", default=["none", "fast", "slow:5", "slow:20", "campaigner"]
    )
    parser.add_argument(
        "--smsbox-option", action="append", default=[], help="extra line for smsbox's group"
    )
    parser.add_argument("--dlr-mask", type=int, default=31, help="31 is what Campaigner asks")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.messages)
        return
    if missing_binaries():
        raise SystemExit(f"Kannel binaries absent: {', '.join(missing_binaries())}")
    options = "".join(f"{line}\n" for line in args.smsbox_option)
    print(f"load before: {os.getloadavg()[0]:.2f}; smsbox options: {args.smsbox_option or '-'}")
    print(
        f"{'receiver':<12} {'n':>4} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'sendsms/s':>9} {'last DLR s':>10}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        stack = KannelStack(Path(tmp), smsbox_options=options)
        stack.start(f"http://127.0.0.1:{free_port()}/inbound")
        try:
            for in_flight in args.in_flight:
                for kind in args.receivers:
                    print(measure(stack, kind, args.messages, in_flight, args.dlr_mask), flush=True)
        finally:
            stack.stop()
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
