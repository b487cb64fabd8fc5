"""CPU per delivery-report callback: the daemon's webhook server alone, under `ab -k -c 16`.

`bench/kannel.py` gives one CPU figure per message for a drain with its reports, the
sender and the webhooks sharing one process; this isolates the webhook side. The daemon's
app (`create_app`, served by `BackgroundServer` in a thread as `campaigner run` does) on a
fresh SQLite database with one message sent through `kannel`; `ab` sends Kannel-shaped
report callbacks for it (GET, token and parameters in the query, keep-alive), and the
process's CPU (all threads) is divided by the callbacks answered. Each callback is applied
through the update queue like a real one (the report is a repeat, so the row does not change).

    .venv/bin/python bench/webhooks.py --requests 20000
    PYTHONPATH=/tmp/main-before .venv/bin/python bench/webhooks.py   # the same on other code
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from bulk_ledger import plan_sample_messages, sample_project  # noqa: E402
from kannel import TOKEN, run_ab  # noqa: E402
from sqlalchemy import update  # noqa: E402

import campaigner  # noqa: E402
from campaigner.clock import SystemClock  # noqa: E402
from campaigner.config import GatewaySettings, Settings  # noqa: E402
from campaigner.db import create_engine_for, session_factory  # noqa: E402
from campaigner.db.models import Message, MessageStatus  # noqa: E402
from campaigner.gateways.kannel import KannelGateway  # noqa: E402
from campaigner.server.app import create_app  # noqa: E402
from campaigner.server.serve import BackgroundServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16, help="ab -c")
    args = parser.parse_args()
    print(f"code: {Path(campaigner.__file__).parent}")
    print(f"load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min)")
    with tempfile.TemporaryDirectory() as tmp:
        settings = sample_project(Path(tmp), GatewaySettings(name="kannel"))
        server = Settings.model_validate({"server": {"webhook_token": TOKEN}}).server
        settings = settings.model_copy(update={"server": server})
        engine = create_engine_for(settings.database.url)
        sessions = session_factory(engine)
        plan_sample_messages(sessions, 1)
        with sessions.begin() as session:
            session.execute(
                update(Message).values(status=MessageStatus.SENT, gateway="kannel", sent_at=None)
            )
        app = create_app(
            settings=settings,
            sessions=sessions,
            clock=SystemClock(),
            gateways={"kannel": KannelGateway(settings.gateway)},
        )
        with BackgroundServer(app) as running:
            url = f"{running.url}/webhooks/kannel/dlr?token={TOKEN}&id=1&status=8"
            run_ab(url, 500, args.concurrency)  # warm-up: imports, first connections
            cpu, wall = time.process_time(), time.perf_counter()
            rate = run_ab(url, args.requests, args.concurrency)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        engine.dispose()
    print(f"callbacks: {args.requests:,} at {rate:,.0f}/s (ab -k -c {args.concurrency})")
    print(f"CPU per callback (this process, all threads): {1e6 * cpu / args.requests:,.0f} µs")
    print(f"load after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min)")


if __name__ == "__main__":
    main()
