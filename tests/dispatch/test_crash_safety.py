"""Kill the dispatcher with SIGKILL at random moments; nothing is sent twice or lost.

The judge is the local gateway's own log of what it received, not the ledger.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator
from pathlib import Path

import pytest
from dispatch_helpers import plan
from local_gateway import LocalSmsServer
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.db.models import Message

WORKER = Path(__file__).with_name("crash_worker.py")
TRIALS = 20
MESSAGES = 600
TERMINAL = {"failed", "skipped", "expired", "delivered", "undelivered"}


@pytest.fixture
def server() -> Iterator[LocalSmsServer]:
    server = LocalSmsServer().start()
    yield server
    server.stop()


def spawn_worker(db_url: str, port: int, offset: float) -> subprocess.Popen[str]:
    """A worker that has done its imports and waits for "go" (see crash_worker.py)."""
    return subprocess.Popen(
        [sys.executable, str(WORKER), db_url, str(port), str(offset)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def go(worker: subprocess.Popen[str]) -> None:
    assert worker.stdin is not None and worker.stdout is not None
    assert worker.stdout.readline().strip() == "ready"
    worker.stdin.write("go\n")
    worker.stdin.flush()


def in_flight(sessions: sessionmaker[Session]) -> bool:
    """True once a batch is claimed, or when nothing is left to claim."""
    with sessions() as session:
        counts = dict(
            session.execute(
                select(Message.status, func.count())
                .where(Message.status.in_(("queued", "sending")))
                .group_by(Message.status)
            ).all()
        )
    return bool(counts.get("sending")) or not counts


@pytest.mark.slow
def test_sigkill_at_random_points_never_sends_twice_or_loses_a_message(
    db_url: str, sessions: sessionmaker[Session], server: LocalSmsServer
) -> None:
    plan(sessions, MESSAGES)
    rng = random.Random(20260322)
    # Two workers import ahead of time, so the trials are not spent waiting on imports.
    offsets = [trial * 60.0 for trial in range(TRIALS + 1)]
    ahead = deque(spawn_worker(db_url, server.port, offset) for offset in offsets[:2])
    interrupted = 0
    for trial in range(TRIALS):
        worker = ahead.popleft()
        if trial + 2 < len(offsets):
            ahead.append(spawn_worker(db_url, server.port, offsets[trial + 2]))
        go(worker)
        # Kill at a random moment once this worker holds a batch (on a loaded machine start-up
        # alone can outlast a fixed delay); once nothing is left there is nothing to wait for.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not in_flight(sessions):
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.1))
        worker.kill()
        worker.wait()
        with sessions() as session:
            interrupted += (
                session.scalar(
                    select(func.count()).where(Message.status.in_(("sending", "unknown")))
                )
                or 0
            )
    assert interrupted > 0, "no kill landed mid-send: the test proves nothing"

    final = ahead.popleft()
    go(final)
    assert final.stdout is not None
    assert final.stdout.readline().strip() == "done"
    assert final.wait(timeout=60) == 0

    with sessions() as session:
        rows = {m.id: m for m in session.scalars(select(Message))}
    deliveries = Counter(message_id for message_id, _phone, _text in server.log)
    occurrences = Counter(
        (rows[i].rule, rows[i].customer_id, rows[i].occurrence_key) for i in deliveries.elements()
    )
    assert len(rows) == MESSAGES, "a planned message vanished"
    assert max(occurrences.values()) == 1, "an occurrence was delivered twice"
    for message_id, message in rows.items():
        if message.status == "sent":
            assert deliveries[message_id] == 1, message_id
        elif message.status == "unknown":
            assert deliveries[message_id] <= 1, message_id
        else:
            assert message.status in TERMINAL, (message_id, message.status)
    # This gateway can look messages up, so reconciliation settled every interrupted row.
    assert {m.status for m in rows.values()} == {"sent"}
    assert set(deliveries) == set(rows)
