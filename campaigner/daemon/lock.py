"""One daemon per SQLite database: SQLite has a single writer, and two planners would fight.

On PostgreSQL any number of daemons may share the database (advisory locks and SKIP LOCKED
coordinate them), so no lock is taken there.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from campaigner.db.engine import sqlite_file
from campaigner.errors import CampaignerError


class InstanceLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @classmethod
    def for_database(cls, url: str) -> InstanceLock | None:
        path = sqlite_file(url)
        return None if path is None else cls(Path(f"{path}.lock"))

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = self.path.read_text().strip() or "another process"
            raise CampaignerError(
                f"another `campaigner run` ({holder}) is already using this SQLite database; "
                f"stop it first, or use PostgreSQL to run several instances (lock: {self.path})"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
