"""A thousand strangers at a real daemon's door: its memory stays small and it carries on.

Issue 13: 800 unauthenticated connections each sending 999 KB of a 1 MB body took the daemon
from 124 MB to 1.15 GB, because bodies were read before the token was checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
from pathlib import Path

import pytest
from daemon_helpers import Shop, daemons, free_port

CLIENTS = 1000
LIMIT_MB = 300
BODY = 1_000_000
SENT = 999_000  # all but the last kilobyte, then the stranger waits
CHUNK = 64 * 1024
TARGETS = [
    ("/webhooks/kannel/inbound", ""),  # no token at all
    ("/webhooks/kannel/dlr?token=guess", ""),
    ("/api/v1/customers", "Authorization: Bearer guess\r\n"),
    ("/webhooks/twilio/inbound", "X-Twilio-Signature: forged\r\n"),
    ("/webhooks/shop/woocommerce", "X-WC-Webhook-Signature: forged\r\n"),
    ("/webhooks/shop/shopify", ""),
]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


async def stranger(port: int, number: int, hold: float) -> None:
    """Announces a megabyte, sends it slowly, then waits: for an answer or `hold` seconds."""
    path, header = TARGETS[number % len(TARGETS)]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return
    with contextlib.suppress(OSError, asyncio.TimeoutError):
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: x\r\n{header}Content-Length: {BODY}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n\r\n".encode()
        )
        for start in range(0, SENT, CHUNK):
            writer.write(b"x" * min(CHUNK, SENT - start))
            await writer.drain()
            await asyncio.sleep(0.01)
        await asyncio.wait_for(reader.read(), hold)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def crowd(port: int, pid: int) -> float:
    """Every stranger at once; returns the daemon's largest RSS seen meanwhile."""
    peak = rss_mb(pid)
    clients = asyncio.gather(*(stranger(port, n, hold=5.0) for n in range(CLIENTS)))
    while not clients.done():
        peak = max(peak, rss_mb(pid))
        await asyncio.sleep(0.05)
    await clients
    return peak


@pytest.mark.slow
def test_a_thousand_unauthenticated_slow_clients_leave_the_daemon_small(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 3 * CLIENTS:
        # Both this process and the daemon (which inherits the limit) hold every connection.
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * CLIENTS), hard))
    closed = f"http://127.0.0.1:{free_port()}"
    shop = Shop(
        tmp_path,
        f"sqlite:///{tmp_path / 'campaigner.db'}",
        {"name": "kannel", "url": closed, "fallback": "signed"},
    ).write()
    env = {
        "CAMPAIGNER_SERVER__WEBHOOK_TOKEN": "the-real-token",
        "CAMPAIGNER_SERVER__API_TOKENS": '["the-real-api-token"]',
        "CAMPAIGNER_GATEWAYS__SIGNED__NAME": "twilio",
        "CAMPAIGNER_GATEWAYS__SIGNED__ACCOUNT_SID": "AC1",
        "CAMPAIGNER_GATEWAYS__SIGNED__AUTH_TOKEN": "twilio-token",
    }
    try:
        with daemons(shop, tmp_path) as start:
            daemon = start(**env)
            daemon.wait_healthy()
            before = rss_mb(daemon.pid)
            peak = asyncio.run(crowd(daemon.port, daemon.pid))
            print(
                f"\ndaemon RSS: {before:.0f} MB before, {peak:.0f} MB at most while "
                f"{CLIENTS} unauthenticated clients sent {SENT // 1000} KB each"
            )
            assert peak < LIMIT_MB
            status, _ = daemon.healthz()
            assert status == 200
            assert daemon.stop() == 0
            log = daemon.log()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert "Traceback" not in log and "ClientDisconnect" not in log
