"""SIGKILL a dispatching process 25 times at random moments, on each backend.

Nothing is sent twice, nothing is lost, and the rows stranded as `unknown` are only those
whose request was in flight at a kill (at most `MAX_IN_FLIGHT` each time), never the rest
of the claimed batch. The gateway is like Kannel (no status lookup), so what is stranded
stays stranded until a person settles it: the test settles it as an operator would, from
the gateway's own log, and drains again.

The judge is the local gateway's log of what it received, not the ledger. It runs with the
local gateway's client and again with the real `kannel` gateway (its raw-socket keep-alive
client) against the local server's smsbox stand-in.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from bulk_ledger import plan
from dispatch_worker import (
    BATCH_SIZE,
    LEASE_SECONDS,
    MAX_IN_FLIGHT,
    NOON_IN_TEHRAN,
)
from local_gateway import LocalSmsServer
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.db.models import Message, MessageStatus
from campaigner.dispatch.unknown import Resolution, Selection, resolve_unknown

HERE = Path(__file__).parent
WORKER = HERE / "dispatch_worker.py"
KILLS = 25
MESSAGES = 1500
SPACING = 60.0  # seconds of worker clock between runs: more than a lease
CHECKED_BY = "chaos-test"

pytestmark = pytest.mark.slow


@dataclass
class Kill:
    in_flight: int  # rows `sending` at the kill: their requests had started
    reached: int  # of those, how many the gateway had received
    claimed: int  # rows claimed by the killed run but not started


@dataclass
class Tally:
    kills: list[Kill] = field(default_factory=list)

    @property
    def in_flight(self) -> int:
        return sum(kill.in_flight for kill in self.kills)

    def summary(self, backend: str, unknown: int) -> str:
        flights = [kill.in_flight for kill in self.kills]
        claimed = sum(kill.claimed for kill in self.kills)
        reached = sum(kill.reached for kill in self.kills)
        return (
            f"\nchaos[{backend}]: {len(self.kills)} SIGKILLs; requests in flight at each kill "
            f"{flights} (at most {MAX_IN_FLIGHT}); unknown rows {unknown} = in flight "
            f"{self.in_flight} ({reached} had reached the gateway); claimed but not started "
            f"at the kills {claimed}, all returned to the queue untouched"
        )


@pytest.fixture
def server() -> Iterator[LocalSmsServer]:
    server = LocalSmsServer(delay=0.005).start()
    yield server
    server.stop()


def spawn_worker(db_url: str, port: int, offset: float, kind: str) -> subprocess.Popen[str]:
    """A worker that has done its imports and waits for "go" (see dispatch_worker.py)."""
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    return subprocess.Popen(
        [sys.executable, str(WORKER), db_url, str(port), str(offset), kind],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def go(worker: subprocess.Popen[str]) -> None:
    assert worker.stdin is not None and worker.stdout is not None
    assert worker.stdout.readline().strip() == "ready"
    worker.stdin.write("go\n")
    worker.stdin.flush()


def run_to_the_end(worker: subprocess.Popen[str]) -> None:
    go(worker)
    assert worker.stdout is not None
    assert worker.stdout.readline().strip() == "done"
    assert worker.wait(timeout=120) == 0


def held(sessions: sessionmaker[Session], since: datetime) -> tuple[int, int, int]:
    """(rows this run is sending, rows it claimed and has not started, rows queued).

    This run's leases all end after `since`, earlier runs' before it: rows an earlier run
    left `sending` (and this run has not yet expired to `unknown`) are not this run's.
    """
    with sessions() as session:
        sending = session.scalar(
            select(func.count()).where(
                Message.status == MessageStatus.SENDING, Message.lease_until > since
            )
        )
        claimed = session.scalar(
            select(func.count()).where(
                Message.status == MessageStatus.QUEUED, Message.lease_until > since
            )
        )
        queued = session.scalar(select(func.count()).where(Message.status == MessageStatus.QUEUED))
    return sending or 0, claimed or 0, queued or 0


def sending_ids(sessions: sessionmaker[Session], since: datetime) -> set[int]:
    """The rows this run had started (see `held`)."""
    with sessions() as session:
        return set(
            session.scalars(
                select(Message.id).where(
                    Message.status == MessageStatus.SENDING, Message.lease_until > since
                )
            )
        )


@pytest.mark.parametrize("kind", ["local", "kannel"])
def test_sigkills_strand_only_requests_in_flight_and_never_send_twice_or_lose_a_message(
    kind: str,
    db_url: str,
    engine: Engine,
    sessions: sessionmaker[Session],
    server: LocalSmsServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan(sessions, MESSAGES)
    rng = random.Random(20261201)
    offsets = [run * SPACING for run in range(KILLS + 2)]
    # Two workers import ahead of time, so the kills are not spent waiting on imports.
    ahead = deque(spawn_worker(db_url, server.port, offset, kind) for offset in offsets[:2])
    tally = Tally()
    for run in range(KILLS):
        worker = ahead.popleft()
        ahead.append(spawn_worker(db_url, server.port, offsets[run + 2], kind))
        # Leases of this run end after `since`; those of earlier runs before it.
        since = NOON_IN_TEHRAN + timedelta(seconds=offsets[run])
        go(worker)
        # Kill at a random moment once this run holds a batch (start-up alone can outlast a
        # fixed delay on a loaded machine): every other run once it has claimed (policy and
        # rendering), the others once requests are on their way; once nothing is left there
        # is nothing to wait for.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            sending, claimed, queued = held(sessions, since)
            if sending or (claimed and run % 2 == 0) or not queued:
                break
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.2))
        worker.kill()
        worker.wait()
        in_flight = sending_ids(sessions, since)
        _, claimed, _ = held(sessions, since)
        with server.lock:
            reached = len(in_flight & server.received_ids)
        tally.kills.append(Kill(len(in_flight), reached, claimed))
        assert len(in_flight) <= MAX_IN_FLIGHT, (
            f"kill {run + 1}: {len(in_flight)} rows sending, but at most {MAX_IN_FLIGHT} "
            f"requests can be in flight (a batch is {BATCH_SIZE})"
        )
    assert tally.in_flight > 0, "no kill landed mid-send: the test proves nothing"
    assert sum(kill.claimed for kill in tally.kills) > 0, "no kill landed on a claimed batch"

    run_to_the_end(ahead.popleft())  # expires the stranded leases, sends everything else
    with sessions() as session:
        rows = {m.id: m for m in session.scalars(select(Message))}
    statuses = Counter(m.status for m in rows.values())
    received = Counter(message_id for message_id, _phone, _text in server.log)
    with capsys.disabled():
        print(tally.summary(f"{engine.dialect.name}, {kind}", statuses["unknown"]))
    assert len(rows) == MESSAGES, "a planned message vanished"
    assert set(statuses) <= {"sent", "unknown"}, statuses
    assert statuses["unknown"] == tally.in_flight  # exactly the requests in flight, no more
    assert max(received.values()) == 1, "a message was received twice"
    occurrences = Counter((m.rule, m.customer_id, m.occurrence_key) for m in rows.values())
    assert max(occurrences.values()) == 1
    for message_id, message in rows.items():
        if message.status == "sent":
            assert received[message_id] == 1, message_id
        assert message.attempts <= 1, (message_id, message.attempts)  # claims cost nothing

    # The operator reads the gateway's log: what it got went out, the rest goes again.
    stranded = [i for i, m in rows.items() if m.status == "unknown"]
    got = [i for i in stranded if received[i]]
    lost = [i for i in stranded if not received[i]]
    now = NOON_IN_TEHRAN + timedelta(seconds=offsets[-1] - LEASE_SECONDS)
    for ids, resolution in ((got, Resolution.SENT), (lost, Resolution.REQUEUE)):
        settled = resolve_unknown(
            sessions, Selection(ids=tuple(ids)), resolution, by=CHECKED_BY, now=now
        )
        assert sorted(settled.resolved) == sorted(ids)
    run_to_the_end(ahead.popleft())

    with sessions() as session:
        final = Counter(session.scalars(select(Message.status)))
    received = Counter(message_id for message_id, _phone, _text in server.log)
    assert final == {"sent": MESSAGES}
    assert set(received) == set(rows) and set(received.values()) == {1}  # 0 lost, 0 twice
