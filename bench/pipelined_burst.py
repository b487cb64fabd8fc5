"""How much memory one client's pipelined requests make the web server hold.

The server (`BackgroundServer`, as `campaigner run` starts it, with a one-route app) runs
in a child process so that its memory is its own. One client, on one connection, sends
tiny pipelined requests (`GET / HTTP/1.1`, 18 bytes each) as fast as it can for
`--seconds` while reading the answers. Printed every second: requests sent and answered,
and the server's memory; at the end, whether the server closed the connection. The
baseline in the same run is the server's memory before the first request.

    .venv/bin/python bench/pipelined_burst.py --seconds 8
    PYTHONPATH=/tmp/main-before .venv/bin/python bench/pipelined_burst.py   # other code
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import socket
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import campaigner
import campaigner.config  # the daemon has it loaded: the same baseline on all code
from campaigner.server.serve import BackgroundServer

REQUEST = b"GET / HTTP/1.1\r\n\r\n"
BURST = 50_000  # requests per sendall


def _pong(request: Request) -> PlainTextResponse:
    return PlainTextResponse("pong")


def _serve(report: Connection) -> None:
    server = BackgroundServer(Starlette(routes=[Route("/", _pong)])).start()
    report.send(server.port)
    signal.pause()


def _rss(pid: int) -> str:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
    return f"server RSS {int(rss) / 1024:,.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8, help="how long to send")
    args = parser.parse_args()
    print(f"code: {Path(campaigner.__file__).parent}")
    print(f"load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min)")
    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.get_context("fork").Process(target=_serve, args=(theirs,))
    child.start()
    try:
        port = ours.recv()
        assert child.pid is not None
        print(f"baseline: {_rss(child.pid)}")
        _burst(port, child.pid, args.seconds)
    finally:
        child.kill()
        child.join()
    print(f"load after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min)")


def _burst(port: int, pid: int, seconds: float) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    answered = [0]

    def read() -> None:
        while True:
            try:
                chunk = sock.recv(1 << 20)
            except OSError:
                return
            if not chunk:
                return
            answered[0] += chunk.count(b"pong")

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    sent = 0
    closed = ""
    started = time.monotonic()
    next_report = started + 1
    burst = REQUEST * BURST
    while (now := time.monotonic()) < started + seconds:
        try:
            sock.sendall(burst)
        except OSError as exc:
            closed = type(exc).__name__
            break
        sent += BURST
        if now >= next_report:
            print(f"{now - started:4.1f} s: {sent:,} sent, {answered[0]:,} answered; {_rss(pid)}")
            next_report += 1
    print(
        f"at the end ({time.monotonic() - started:.1f} s): {sent:,} sent, "
        f"{answered[0]:,} answered; {_rss(pid)}; "
        + (f"closed by the server ({closed})" if closed else "connection still open")
    )
    sock.close()


if __name__ == "__main__":
    main()
