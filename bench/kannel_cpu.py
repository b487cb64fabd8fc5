"""Where Campaigner's CPU goes on the Kannel path: preparing a batch against sending it.

`bench/kannel.py` gives one CPU figure per message for a whole drain. This splits it, and
compares code versions in one run on one Kannel: each version drains the same sample
messages (no DLRs, `bench/kannel.py`'s project) in a fresh process, with `time.process_time`
(all threads) around `Dispatcher._prepare` (ledger load, policy, rendering, coupons, the
texts written) and `Sender.send` (the requests and the record-and-start transactions), and
the sending threads' own CPU read from /proc. Versions alternate, so a change in the
machine's load falls on all of them alike.

    .venv/bin/python bench/kannel_cpu.py --messages 3000 --runs 2 \\
        --before /tmp/kannelcpu-before          # `git archive main campaigner | tar -x -C …`
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from kannel_stack import KannelStack, free_port, missing_binaries  # noqa: E402


def timed(owner: type, name: str, totals: dict[str, float], key: str) -> None:
    """Add the process's CPU spent in `owner.name` to `totals[key]`."""
    original: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            totals[key] += time.process_time() - started

    setattr(owner, name, wrapper)


def thread_cpu() -> float:
    """CPU seconds of this process's threads other than the main one (Linux schedstat, in
    nanoseconds: /proc's tick counts round a thread's few milliseconds down to nothing)."""
    main = threading.get_native_id()
    total = 0
    for task in os.listdir("/proc/self/task"):
        if int(task) != main:
            total += int(Path(f"/proc/self/task/{task}/schedstat").read_text().split()[0])
    return total / 1e9


def worker(sendsms_url: str, messages: int, in_flight: int) -> None:
    """One drain, in this process, of whichever `campaigner` the path holds."""
    from bulk_ledger import plan_sample_messages
    from kannel import campaigner_settings

    import campaigner
    from campaigner.clock import SystemClock
    from campaigner.db import create_engine_for, session_factory
    from campaigner.dispatch.dispatcher import Dispatcher
    from campaigner.dispatch.sender import Sender
    from campaigner.gateways.kannel import KannelGateway
    from campaigner.runtime import Runtime

    totals = {"prepare": 0.0, "send": 0.0}
    timed(Dispatcher, "_prepare", totals, "prepare")
    timed(Sender, "send", totals, "send")
    with tempfile.TemporaryDirectory() as tmp:
        settings = campaigner_settings(Path(tmp), sendsms_url, in_flight, free_port())
        engine = create_engine_for(settings.database.url)
        plan_sample_messages(session_factory(engine), messages)
        engine.dispose()
        engine = create_engine_for(settings.database.url)
        runtime = Runtime.build(
            settings,
            clock=SystemClock(),
            sessions=session_factory(engine),
            gateway=KannelGateway(settings.gateway),
        )
        try:  # as `campaigner run` does once it has built everything (versions that do)
            from campaigner.daemon.heap import settle_after_start
        except ImportError:
            pass
        else:
            settle_after_start()
        threads_before = thread_cpu()
        started, cpu = time.perf_counter(), time.process_time()
        report = runtime.drain()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - started
        threads = thread_cpu() - threads_before
        runtime.close()
        engine.dispose()
    if report.sent != messages:
        raise SystemExit(f"sent {report.sent} of {messages} ({report})")
    per = 1000 / messages
    figures = {
        "source": str(Path(campaigner.__file__).parent.parent),
        "cpu_ms": cpu * per,
        "prepare_ms": totals["prepare"] * per,
        "send_ms": totals["send"] * per,
        "threads_ms": threads * per,
        "rate": messages / wall,
    }
    print(json.dumps(figures), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=3_000)
    parser.add_argument("--runs", type=int, default=2, help="rounds of all versions")
    parser.add_argument("--max-in-flight", type=int, default=16)
    parser.add_argument(
        "--before",
        action="append",
        default=[],
        help="a directory holding another version's campaigner/ (repeatable)",
    )
    parser.add_argument("--worker", metavar="SENDSMS_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.messages, args.max_in_flight)
        return
    if missing_binaries():
        raise SystemExit(f"Kannel binaries absent: {', '.join(missing_binaries())}")
    versions = [*args.before, ""]  # "" = this checkout
    print(f"{args.messages:,} messages per drain, max_in_flight {args.max_in_flight}")
    print(
        f"{'version':<40} {'load':>5} {'CPU':>6} {'prepare':>8} {'send':>6} {'threads':>8} msgs/s"
    )
    with tempfile.TemporaryDirectory() as tmp:
        stack = KannelStack(Path(tmp)).start(f"http://127.0.0.1:{free_port()}/inbound")
        try:
            for _ in range(args.runs):
                for version in versions:
                    env = {**os.environ, "PYTHONPATH": version} if version else None
                    command = [sys.executable, __file__, "--worker", stack.sendsms_url]
                    command += ["--messages", str(args.messages)]
                    command += ["--max-in-flight", str(args.max_in_flight)]
                    load = os.getloadavg()[0]
                    done = subprocess.run(
                        command, env=env, capture_output=True, text=True, check=True
                    )
                    row = json.loads(done.stdout.strip().splitlines()[-1])
                    print(
                        f"{(version or 'this checkout')[-40:]:<40} {load:>5.2f} "
                        f"{row['cpu_ms']:>6.3f} {row['prepare_ms']:>8.3f} {row['send_ms']:>6.3f} "
                        f"{row['threads_ms']:>8.3f} {row['rate']:>6,.0f}",
                        flush=True,
                    )
        finally:
            stack.stop()
    print("(ms of CPU per message; 'send' includes the sending threads, shown apart)")


if __name__ == "__main__":
    main()
