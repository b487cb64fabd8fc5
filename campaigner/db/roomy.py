"""Room for one big statement: a larger SQLite page cache, or more PostgreSQL sort memory,
for the work of one transaction over the whole shop (queueing an audience, rescoring every
customer). The defaults (2 MB, 4 MB) make such statements spill and reread pages; a daemon
that keeps them raised all the time would hold the memory between passes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.orm import Session


@contextmanager
def roomy(
    session: Session, *, sqlite_cache_kib: int, work_mem_mb: int = 0, wanted: bool = True
) -> Iterator[None]:
    """SQLite: `sqlite_cache_kib` of page cache on this connection, the previous size again
    afterwards. PostgreSQL: `work_mem_mb` for the rest of the transaction (SET LOCAL ends
    with it); 0 leaves it as configured."""
    dialect = session.get_bind().dialect.name
    if not wanted or dialect not in ("sqlite", "postgresql"):
        yield
        return
    if dialect == "postgresql":
        if work_mem_mb:
            session.execute(text(f"SET LOCAL work_mem = '{int(work_mem_mb)}MB'"))
        yield
        return
    previous = int(session.scalar(text("PRAGMA cache_size")) or -2000)
    session.execute(text(f"PRAGMA cache_size=-{int(sqlite_cache_kib)}"))
    try:
        yield
    finally:
        session.execute(text(f"PRAGMA cache_size={previous}"))
