"""Writing an import's batches on a thread of its own, while the reader prepares the next.

On PostgreSQL the server's work on a batch (COPY, the merge into customers, the commit) took
40 % of an import's wall clock, during which the importer sat waiting instead of parsing the
next batch. A `BatchWriter` hands each batch to one writer thread, with its own connection:
the database works on one batch on one core while Python prepares the next on the other.

What an import promises stays as it was: each batch is written whole in one transaction, in
the order read, by one writer, so a batch sees every batch before it committed. The queue
holds at most `depth` batches besides the one being written, so memory stays flat. The first
failure of a write is raised, as it was raised, to the reader at its next hand-off or at
`close`; the writer then drops what is still queued and writes nothing more, so the
database holds exactly the batches before the failed one, and the reader never waits on a
writer that has stopped. `cancel` (Ctrl-C) likewise drops what is queued: the batch being
written ends whole, and nothing after it is begun.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Generic, TypeVar

Batch = TypeVar("Batch")
_DONE = object()


class BatchWriter(Generic[Batch]):
    """Calls `write` on each batch `put`, in order, on a thread of its own."""

    def __init__(self, write: Callable[[Batch], None], *, depth: int = 1) -> None:
        self._write = write
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._failure: BaseException | None = None
        self._cancelled = False
        self._thread = threading.Thread(target=self._run, name="import-writer", daemon=True)
        self._thread.start()

    def put(self, batch: Batch) -> None:
        """Queue a batch (waiting while the queue is full); raises an earlier write's failure."""
        self._raise_failure()
        self._queue.put(batch)

    def close(self) -> None:
        """Wait until every batch queued is written; raises a write's failure."""
        if self._thread.is_alive():
            self._queue.put(_DONE)
            self._thread.join()
        self._raise_failure()

    def cancel(self) -> None:
        """Begin no batch not already begun; `close` or leaving the block then waits only for
        the one being written."""
        self._cancelled = True
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    def __enter__(self) -> BatchWriter[Batch]:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
            return
        # The reader failed: the batches it handed over are written, as they were before
        # the writer had a thread of its own; its own error is the one that propagates.
        if self._thread.is_alive():
            self._queue.put(_DONE)
            self._thread.join()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _run(self) -> None:
        while (batch := self._queue.get()) is not _DONE:
            if self._failure is not None or self._cancelled:
                continue  # drained, not written: after a failure, or Ctrl-C (`cancel`)
            try:
                self._write(batch)  # type: ignore[arg-type]
            except BaseException as exc:  # handed to the reader thread, which raises it
                self._failure = exc
