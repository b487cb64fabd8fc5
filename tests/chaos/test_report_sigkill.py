"""SIGKILL the webhook server while Kannel-style delivery reports pour in, on each backend.

A report is answered 200 only once the batch holding it has committed, so whatever a kill
interrupts, every report that was answered is in the ledger: the ones lost with the
process were never acknowledged, and the sender (here the test, as Kannel with
`http-request-retry`) sends them again to the next process. After the rounds, every
message is `delivered`: no report lost, none applied twice in a way that shows.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bulk_ledger import plan
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from campaigner.db.models import Message, MessageStatus

HERE = Path(__file__).parent
WORKER = HERE / "report_worker.py"
TOKEN = "chaos-report-token"
MESSAGES = 2000
KILLS = 5
SENDERS = 16

pytestmark = pytest.mark.slow


def start_worker(db_url: str) -> tuple[subprocess.Popen[str], int]:
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    worker = subprocess.Popen(
        [sys.executable, str(WORKER), db_url, TOKEN], stdout=subprocess.PIPE, text=True, env=env
    )
    assert worker.stdout is not None
    return worker, int(worker.stdout.readline())


class Reporter:
    """SENDERS threads posting one Kannel DLR (`status=1`) per message id on keep-alive
    connections; records which were answered 200."""

    def __init__(self, port: int, ids: list[int]) -> None:
        self.url = f"http://127.0.0.1:{port}/webhooks/kannel/dlr"
        self.ids = ids
        self.answered: set[int] = set()
        self.lock = threading.Lock()

    def run(self) -> None:
        threads = [
            threading.Thread(target=self._send, args=(self.ids[n::SENDERS],))
            for n in range(SENDERS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _send(self, ids: list[int]) -> None:
        with httpx.Client(timeout=10) as client:
            for message_id in ids:
                params = {"id": str(message_id), "status": "1", "token": TOKEN}
                try:
                    response = client.get(self.url, params=params)
                except httpx.HTTPError:
                    continue  # the process died: not acknowledged, Kannel would retry
                if response.status_code == 200:
                    with self.lock:
                        self.answered.add(message_id)


def delivered(sessions: sessionmaker[Session]) -> set[int]:
    with sessions() as session:
        return set(
            session.scalars(select(Message.id).where(Message.status == MessageStatus.DELIVERED))
        )


@pytest.fixture
def sent_messages(sessions: sessionmaker[Session]) -> Iterator[list[int]]:
    plan(sessions, MESSAGES)
    with sessions.begin() as session:
        session.execute(update(Message).values(status=MessageStatus.SENT, gateway="kannel"))
        ids = list(session.scalars(select(Message.id).order_by(Message.id)))
    yield ids


def test_a_report_answered_200_is_never_lost_whenever_the_process_dies(
    db_url: str,
    sessions: sessionmaker[Session],
    sent_messages: list[int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    rng = random.Random(20261130)
    pending = list(sent_messages)
    interrupted = []  # reports sent but not answered at each kill
    for _ in range(KILLS):
        worker, port = start_worker(db_url)
        reporter = Reporter(port, pending)
        sending = threading.Thread(target=reporter.run)
        sending.start()
        # Kill mid-stream: once a random share of this round's reports has been answered.
        enough = rng.randint(1, len(pending) // 2)
        deadline = time.monotonic() + 60
        while len(reporter.answered) < enough and time.monotonic() < deadline:
            time.sleep(0.001)
        worker.kill()
        worker.wait()
        sending.join()
        applied = delivered(sessions)
        lost = reporter.answered - applied
        assert not lost, (
            f"{len(lost)} reports answered 200 but not in the ledger: {sorted(lost)[:5]}"
        )
        assert reporter.answered, "the kill came before any report was answered"
        interrupted.append(len(set(pending) - reporter.answered))
        pending = sorted(set(sent_messages) - applied)  # the retries go to the next process
    assert all(interrupted), "a kill came after the last report: it proves nothing"
    worker, port = start_worker(db_url)
    try:
        Reporter(port, pending).run()
    finally:
        worker.kill()
        worker.wait()
    with capsys.disabled():
        print(f"\nreport chaos: {KILLS} SIGKILLs; reports unanswered at each kill {interrupted}")
    assert delivered(sessions) == set(sent_messages)
