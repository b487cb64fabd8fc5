"""A database error as one line the operator can act on, naming the database, never its
password."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, OperationalError

from campaigner.config import mask_url

LOCKED = "database is locked"


def describe_database_error(exc: DBAPIError, url: str | None) -> str:
    reason = _first_line(exc.orig) if exc.orig is not None else _first_line(exc)
    where = f"database {mask_url(url)}" if url else "the database"
    if LOCKED in reason:
        return (
            f"{where} is locked: another process (a running `campaigner run`, an import) is "
            f"writing to it; try again when it has finished, or raise database.lock_timeout"
        )
    if isinstance(exc, OperationalError):
        return f"cannot use {where}: {reason}"
    return f"{where}: {reason}"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__
