"""How many slow connections one client can make the web server hold (slowloris).

The server (`BackgroundServer`, as `campaigner run` starts it, with a one-route app) runs
in a child process so that its file descriptors and memory are its own. One client opens
`--rate` connections a second for `--seconds`, each sending the start of a request head
and then one more byte of it every `--trickle` seconds, never finishing it. Printed every
five seconds: connections opened, still held by the server, and the server's open file
descriptors and memory; at the end, the time a normal request takes meanwhile. The
baseline in the same run is the server's descriptors and memory before the first slow
connection, and a normal request's time then.

    .venv/bin/python bench/slow_clients.py --rate 200 --seconds 30
    PYTHONPATH=/tmp/main-before .venv/bin/python bench/slow_clients.py   # the same on other code
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import selectors
import signal
import socket
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

HEAD_START = b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


def _ping(request: Request) -> PlainTextResponse:
    return PlainTextResponse("pong")


def _serve(report: Connection) -> None:
    server = BackgroundServer(Starlette(routes=[Route("/ping", _ping)])).start()
    report.send(server.port)
    signal.pause()


def _server_figures(pid: int) -> str:
    descriptors = len(os.listdir(f"/proc/{pid}/fd"))
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
    return f"server: {descriptors:,} fds, {int(rss) / 1024:,.0f} MiB"


def _normal_request(port: int) -> str:
    started = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
    except OSError as exc:
        return f"normal request: failed ({exc})"
    status = answer.split(b"\r\n", 1)[0].decode("latin-1") or "no answer"
    return f"normal request: {status}, {1000 * (time.perf_counter() - started):.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=200, help="new connections a second")
    parser.add_argument("--seconds", type=float, default=30, help="how long to open them")
    parser.add_argument("--trickle", type=float, default=2.0, help="seconds between bytes")
    args = parser.parse_args()
    print(f"code: {Path(campaigner.__file__).parent}")
    print(f"load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min)")
    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.get_context("fork").Process(target=_serve, args=(theirs,))
    child.start()
    try:
        port = ours.recv()
        assert child.pid is not None
        print(f"baseline: {_server_figures(child.pid)}; {_normal_request(port)}")
        held = _hold(port, child.pid, args)
        print(f"at the end: {held:,} held; {_normal_request(port)}")
    finally:
        child.kill()
        child.join()
    print(f"load after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min)")


def _hold(port: int, pid: int, args: argparse.Namespace) -> int:
    """Open and trickle the slow connections; the number the server still holds at the end."""
    selector = selectors.DefaultSelector()
    open_ones: dict[socket.socket, float] = {}  # each connection and when it last sent
    opened = refused = 0
    started = time.monotonic()
    next_report = started + 5
    while (now := time.monotonic()) < started + args.seconds:
        while opened < (now - started) * args.rate:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=1)
                sock.sendall(HEAD_START)
            except OSError:
                refused += 1
                opened += 1
                continue
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
            open_ones[sock] = now
            opened += 1
        for key, _ in selector.select(timeout=0.01):
            ready = key.fileobj
            assert isinstance(ready, socket.socket)
            try:
                data = ready.recv(65536)
            except OSError:
                data = b""
            if not data or b"\r\n\r\n" in data:  # closed, or answered (and closing)
                selector.unregister(ready)
                ready.close()
                del open_ones[ready]
        for sock, sent in list(open_ones.items()):
            if now - sent >= args.trickle:
                try:
                    sock.send(b"a")
                    open_ones[sock] = now
                except OSError:
                    pass  # closed by the server: the selector sees it
        if now >= next_report:
            print(
                f"{now - started:5.1f} s: {opened:,} opened ({refused:,} not connected), "
                f"{len(open_ones):,} held; {_server_figures(pid)}"
            )
            next_report += 5
    held = len(open_ones)
    for sock in open_ones:
        sock.close()
    return held


if __name__ == "__main__":
    main()
