"""Delivery reports and replies applied in batches: one transaction for all that arrived meanwhile.

An SMSC reports twice per message (accepted, then delivered), so at the gateway's pace a
transaction per callback made the webhooks the daemon's bottleneck and held SQLite's one
writer lock against the dispatcher. Each webhook hands its parsed update to this queue and
waits; one thread applies everything queued in one transaction (set-based for reports),
and every waiting webhook answers once that transaction has committed.

The trade-off, chosen over a write-ahead table: the answer waits for a commit (a few
milliseconds, shared by the whole batch), and in exchange an answered update is always in
the ledger. If the process dies first, the provider gets no answer, never a 200 for an
update that was lost; Kannel does not retry such a callback by default (see
docs/dispatch.md), so that report is lost to us, not silently swallowed, and its message
stays `sent`. A write-ahead table would cost one more commit per callback, which is
exactly what this queue removes.

If a batch fails, each update is applied again in its own transaction, so a bad one fails
alone (its webhook answers 400 or 500) and the others still land.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import Clock
from campaigner.gateways.base import DeliveryReport
from campaigner.inbound import apply_delivery_reports

log = logging.getLogger(__name__)

MAX_BATCH = 2000  # updates per transaction
IDLE_SECONDS = 5.0  # the applier thread ends after this long without work (and comes back)

Inbound = Callable[[Session, datetime], str]


@dataclass
class _Update:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    reports: list[tuple[DeliveryReport, Collection[str]]] = field(default_factory=list)
    inbound: Inbound | None = None


class UpdateQueue:
    """`await queue.reports(...)` / `await queue.inbound(...)` return once committed."""

    def __init__(
        self, sessions: sessionmaker[Session], clock: Clock, max_batch: int = MAX_BATCH
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Update] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running = False
        self.batches = 0  # transactions committed, for tests and metrics

    async def reports(self, reports: list[DeliveryReport], routes: Collection[str]) -> list[bool]:
        """Apply delivery reports; for each, whether its message was found."""
        if not reports:
            return []
        result: list[bool] = await self._submit(reports=[(r, routes) for r in reports])
        return result

    async def inbound(self, handle: Inbound) -> str:
        """Run `handle(session, now)` for one inbound message in a batch's transaction."""
        result: str = await self._submit(inbound=handle)
        return result

    async def _submit(self, **what: Any) -> Any:
        loop = asyncio.get_running_loop()
        update = _Update(loop, loop.create_future(), **what)
        with self._lock:
            self._queue.put(update)
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="webhook-updates", daemon=True).start()
        return await update.future

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._running = False
                        return
                continue
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._apply(batch)

    def _apply(self, batch: list[_Update]) -> None:
        try:
            with self.sessions.begin() as session:
                results = _apply_all(session, batch, self.clock.now())
            self.batches += 1
        except Exception:
            log.warning("webhook batch of %d failed; applying each on its own", len(batch))
            results = [self._apply_alone(update) for update in batch]
        for update, result in zip(batch, results, strict=True):
            update.loop.call_soon_threadsafe(_settle, update.future, result)

    def _apply_alone(self, update: _Update) -> Any:
        try:
            with self.sessions.begin() as session:
                [result] = _apply_all(session, [update], self.clock.now())
        except Exception as exc:
            if not isinstance(exc, ValueError):
                log.exception("webhook update failed")
            return exc
        self.batches += 1
        return result


def _apply_all(session: Session, batch: list[_Update], now: datetime) -> list[Any]:
    """Every update of the batch in `session`: the reports of all in one set-based call."""
    reports = [pair for update in batch for pair in update.reports]
    known = iter(apply_delivery_reports(session, reports, now=now))
    results: list[Any] = []
    for update in batch:
        if update.inbound is not None:
            results.append(update.inbound(session, now))
        else:
            results.append([next(known) for _ in update.reports])
    return results


def _settle(future: asyncio.Future[Any], result: Any) -> None:
    if future.done():  # the caller went away (disconnected)
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
