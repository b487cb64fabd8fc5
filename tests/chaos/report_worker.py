"""The webhook server in its own process, for the chaos test to SIGKILL while it applies reports.

Usage: report_worker.py DB_URL TOKEN   (PYTHONPATH must hold tests/)

Serves `/webhooks/kannel/dlr` exactly as `campaigner run` does (the same app, the same
update queue), prints its port, and runs until killed.
"""

from __future__ import annotations

import sys
import threading

from campaigner.clock import SystemClock
from campaigner.config import GatewaySettings, Settings
from campaigner.db import create_engine_for, session_factory
from campaigner.gateways.base import Gateway
from campaigner.gateways.kannel import KannelGateway
from campaigner.server.app import create_app
from campaigner.server.serve import BackgroundServer


def main(db_url: str, token: str) -> None:
    settings = Settings.model_validate({"database": {"url": db_url}})
    engine = create_engine_for(db_url)
    engine.connect().close()
    gateway = KannelGateway(GatewaySettings(name="kannel"), webhook_token=token)
    gateways: dict[str, Gateway] = {"kannel": gateway}
    app = create_app(
        settings=settings, sessions=session_factory(engine), clock=SystemClock(), gateways=gateways
    )
    server = BackgroundServer(app).start()
    print(server.port, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
