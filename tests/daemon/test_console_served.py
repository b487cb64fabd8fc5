"""The daemon serves the console under /console on its own port by default, on another
address when [console] names one, and not at all when it is turned off."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from daemon_helpers import Shop, daemons, free_port, wait_for


def _shop(tmp_path: Path) -> Shop:
    return Shop(
        tmp_path,
        f"sqlite:///{tmp_path / 'campaigner.db'}",
        {"name": "file", "path": str(tmp_path / "sent.jsonl")},
    ).write()


@pytest.mark.slow
def test_the_console_answers_on_the_daemon_port_and_can_be_moved_or_turned_off(
    tmp_path: Path,
) -> None:
    shop = _shop(tmp_path)
    with daemons(shop, tmp_path) as start:
        daemon = start()
        daemon.wait_healthy()
        status, body = daemon.get("/console/login")
        assert status == 200 and b'name="password"' in body
        assert daemon.stop() == 0

        own_port = free_port()
        moved = start(CAMPAIGNER_CONSOLE__PORT=str(own_port))
        moved.wait_healthy()
        assert moved.get("/console/login")[0] == 404
        wait_for(
            lambda: f"console on http://127.0.0.1:{own_port}/console/" in moved.log(),
            "the console's own port in the log",
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{own_port}/console/login") as answer:
            assert answer.status == 200
        assert moved.stop() == 0

        off = start(CAMPAIGNER_CONSOLE__ENABLED="false")
        off.wait_healthy()
        assert off.get("/console/login")[0] == 404
        assert "console on" not in off.log()
