"""`campaigner run` on PostgreSQL: surviving an outage, and several daemons on one database."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import alter_pg_database, create_pg_database, drop_pg_database, require_postgres
from daemon_helpers import Shop, daemons, wait_for
from sqlalchemy import func, select

from campaigner.db.models import Message


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A database of this test's own, so the outage and the daemons touch nothing else."""
    require_postgres()
    url = create_pg_database()
    yield url
    set_connections(url, allowed=True)
    drop_pg_database(url)


def set_connections(url: str, *, allowed: bool) -> None:
    """Open or close the database to new connections, ending every existing one: what the
    daemon sees while PostgreSQL restarts."""
    alter_pg_database(url, f"ALLOW_CONNECTIONS {allowed}")


def read_sent(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_a_database_outage_is_survived(tmp_path: Path, pg_database: str) -> None:
    sent = tmp_path / "sent.jsonl"
    shop = Shop(tmp_path, pg_database, {"name": "file", "path": str(sent)}).write()
    shop.add_paid_orders(3)
    with daemons(shop, tmp_path) as start:
        daemon = start()
        daemon.wait_healthy()
        wait_for(lambda: len(read_sent(sent)) == 3, "the first three messages")

        set_connections(pg_database, allowed=False)

        def unhealthy() -> dict[str, Any] | None:
            status, body = daemon.healthz()
            return body if status == 503 else None

        body = wait_for(unhealthy, "/healthz to answer 503")
        assert body["database"].startswith("unavailable") and body["status"] == "unhealthy"
        wait_for(lambda: "database error: OperationalError" in daemon.log(), "the outage logged")
        assert daemon.process.poll() is None, "the daemon died with the database"

        set_connections(pg_database, allowed=True)
        daemon.wait_healthy()
        shop.add_paid_orders(2)  # due after the outage
        wait_for(lambda: len(read_sent(sent)) == 5, "messages due after the outage", 60)
        assert daemon.stop() == 0, daemon.log()

    phones = Counter(str(m["phone"]) for m in read_sent(sent))
    assert len(phones) == 5 and set(phones.values()) == {1}
    with shop.sessions() as sessions, sessions() as session:
        statuses = Counter(session.scalars(select(Message.status)))
    assert statuses == {"sent": 5}


CUSTOMERS = 5000


@pytest.mark.slow
def test_two_daemons_send_each_message_exactly_once(tmp_path: Path, pg_database: str) -> None:
    shop = Shop(tmp_path, pg_database, {"name": "file", "path": str(tmp_path / "unused")})
    shop.write().add_paid_orders(CUSTOMERS)
    outputs = [tmp_path / "first.jsonl", tmp_path / "second.jsonl"]

    def sent_count() -> int:
        with shop.sessions() as sessions, sessions() as session:
            return session.scalar(select(func.count()).where(Message.status == "sent")) or 0

    with daemons(shop, tmp_path) as start:
        running = [start(CAMPAIGNER_GATEWAY__PATH=str(path)) for path in outputs]
        wait_for(lambda: sent_count() == CUSTOMERS, f"{CUSTOMERS} messages sent", 60, 0.5)
        for daemon in running:
            assert daemon.stop() == 0, daemon.log()

    received = [message for path in outputs for message in read_sent(path)]
    by_id = Counter(message["id"] for message in received)
    by_phone = Counter(message["phone"] for message in received)
    assert len(received) == CUSTOMERS, "a message was delivered twice or not at all"
    assert set(by_id.values()) == {1} and len(by_phone) == CUSTOMERS
    assert all(read_sent(path) for path in outputs), "one daemon did all the work"
    with shop.sessions() as sessions, sessions() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == CUSTOMERS
