"""Send a prepared batch through one route, `max_in_flight` requests at a time.

A request's rows become `sending` in the same transaction that records the answers which
freed its slot, just before it starts: the requests that start together are marked in one
statement, and a crash strands only the rows of requests actually in flight. One-message-
per-request gateways (Kannel, Twilio) thereby send concurrently on their pooled client.

Answers are recorded once half the slots are free (all of them at the end of a batch),
not one transaction per answer: never more than `max_in_flight` requests run, and never
more rows are `sending` than the requests started and not yet recorded.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from queue import SimpleQueue

from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import Clock
from campaigner.dispatch.ledger import start_sending
from campaigner.dispatch.recording import Answer, Job, Recorded, Recorder
from campaigner.dispatch.report import DispatchReport
from campaigner.dispatch.routes import Route
from campaigner.gateways.base import GatewayError, Outcome

logger = logging.getLogger(__name__)

Chunk = list[Job]
Answered = tuple[Chunk, Answer]


class Sender:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        recorder: Recorder,
        lease: timedelta,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.recorder = recorder
        self.lease = lease

    def send(
        self,
        route: Route,
        jobs: list[Job],
        claim: str,
        report: DispatchReport,
        stop: Callable[[], bool],
    ) -> set[int]:
        """Send until every job has an answer, or the circuit opens or `stop()` says so
        (the rest stay claimed for the caller to release); returns the ids that started."""
        size = max(1, route.gateway.max_batch)
        waiting = deque(jobs[start : start + size] for start in range(0, len(jobs), size))
        # Each request puts its answer here when done: one queue read per answer, where
        # `concurrent.futures.wait` locked every running future each time.
        done: SimpleQueue[Answered] = SimpleQueue()
        running = 0
        answered: list[Answered] = []
        started: set[int] = set()
        # One connection for the whole batch: a transaction per group of requests, without
        # a pool check-out (and PostgreSQL's pre-ping) each time.
        with (
            self.sessions.kw["bind"].connect() as connection,
            self.sessions(bind=connection) as session,
        ):
            while True:
                starting = self._next_group(route, waiting, running, stop)
                ready = self._record_and_start(session, route, claim, answered, starting, report)
                for chunk in ready:
                    route.pool.submit(_request, route, chunk, done)
                    started.update(job.outgoing.id for job in chunk)
                running += len(ready)
                answered = []
                if not running:
                    return started
                # Wait until at most the low-water mark of requests is still running.
                low_water = _low_water(route, bool(waiting))
                while running and (not answered or running > low_water):
                    answered.append(done.get())
                    running -= 1

    def _next_group(
        self, route: Route, waiting: deque[Chunk], in_flight: int, stop: Callable[[], bool]
    ) -> list[Chunk]:
        """The requests that may start now: free slots, a closed circuit, tokens to spend."""
        group: list[Chunk] = []
        while waiting and in_flight + len(group) < route.max_in_flight and not stop():
            if not route.breaker.allow_request():
                break
            chunk = waiting.popleft()
            route.bucket.acquire(len(chunk))
            group.append(chunk)
        return group

    def _record_and_start(
        self,
        session: Session,
        route: Route,
        claim: str,
        answered: list[Answered],
        starting: list[Chunk],
        report: DispatchReport,
    ) -> list[Chunk]:
        """One transaction: record the answers in, mark the starting rows `sending`; returns
        the chunks (of rows still ours) to send."""
        if not answered and not starting:
            return []
        now = self.clock.now()
        recorded = Recorded()
        for chunk, answer in answered:
            self.recorder.record(route.label, chunk, answer, now, report, recorded)
        ids = {job.outgoing.id for chunk in starting for job in chunk}
        with session.begin():
            recorded.write(session, claim, route.label, now)
            ours = start_sending(
                session,
                ids,
                now,
                claim=claim,
                gateway=route.label,
                lease_until=now + self.lease,
            )
        chunks = [[job for job in chunk if job.outgoing.id in ours] for chunk in starting]
        return [chunk for chunk in chunks if chunk]


def _low_water(route: Route, more_to_start: bool) -> int:
    """How few requests may still run before answers are recorded and the next start.

    Recording is a transaction: one per answer was the sender's largest cost. Half the
    slots at a time keeps the gateway busy at a transaction per `max_in_flight / 2`
    answers; once nothing is left to start, the batch's last answers are recorded together.
    """
    return route.max_in_flight // 2 if more_to_start else 0


def _request(route: Route, chunk: Chunk, done: SimpleQueue[Answered]) -> None:
    """One request in a pool thread; its answer goes to `done`, whatever happens."""
    try:
        answer = _answer(route, chunk)
    except BaseException as exc:
        answer = Answer(crash=f"{type(exc).__name__}: {exc}")
    done.put((chunk, answer))


def _answer(route: Route, chunk: Chunk) -> Answer:
    """The gateway's answer to one request; the breaker learns from every answer."""
    try:
        results = route.gateway.send([job.outgoing for job in chunk])
    except GatewayError as exc:
        if exc.auth or exc.temporary:
            _failure(route, f"{type(exc).__name__}: {exc}", auth=exc.auth)
        else:
            route.breaker.success()  # it answered: up, though it refused this request
        return Answer(error=exc)
    except Exception as exc:
        # Whether the gateway got it is unknown: never guess, record `unknown`.
        logger.exception("gateway %s: unexpected error while sending", route.label)
        _failure(route, f"{type(exc).__name__}: {exc}", auth=False)
        return Answer(crash=f"{type(exc).__name__}: {exc}")
    if results and all(result.outcome is Outcome.TEMPORARY for result in results):
        _failure(route, results[0].error or "temporary error", auth=False)
    else:
        route.breaker.success()
    return Answer(results=results)


def _failure(route: Route, error: str, *, auth: bool) -> None:
    if route.breaker.failure(error, auth=auth):
        logger.error(
            "gateway %s: circuit opened (%s); dispatch paused until %s",
            route.label,
            error,
            route.breaker.retry_at,
        )
