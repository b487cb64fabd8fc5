"""A database error as one line the operator can act on, naming the database, never its
password."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, OperationalError

from campaigner.config import mask_url
from campaigner.errors import one_line

LOCKED = "database is locked"


def describe_database_error(exc: DBAPIError, url: str | None) -> str:
    reason = one_line(exc)
    where = f"database {mask_url(url)}" if url else "the database"
    if LOCKED in reason:
        return (
            f"{where} is locked: another process (a running `campaigner run`, an import) is "
            f"writing to it; try again when it has finished, or raise database.lock_timeout"
        )
    if isinstance(exc, OperationalError):
        return f"cannot use {where}: {reason}"
    return f"{where}: {reason}"
