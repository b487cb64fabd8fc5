"""The opt-out list: phone numbers that receive nothing, whatever rule or consent says."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Table, delete, select
from sqlalchemy.orm import Session

from campaigner.customers.csvfile import open_csv
from campaigner.customers.phones import InvalidPhone, normalize_phone
from campaigner.db.models import OptOut
from campaigner.db.upsert import insert_ignore
from campaigner.errors import CampaignerError


@dataclass
class OptOutImport:
    added: int = 0
    already: int = 0
    invalid: list[str] = field(default_factory=list)


def add_opt_outs(
    session: Session,
    phones: Iterable[str],
    now: datetime,
    *,
    source: str = "manual",
    reason: str = "",
) -> int:
    """Add E.164 phones to the list (existing entries keep their original source and date);
    returns how many are new. Every opt-out — CLI, import, SMS reply, gateway — is written here.
    """
    wanted = sorted(set(phones))
    if not wanted:
        return 0
    known = set(session.scalars(select(OptOut.phone).where(OptOut.phone.in_(wanted))))
    rows = [
        {"phone": phone, "source": source, "reason": reason[:255], "created_at": now}
        for phone in wanted
        if phone not in known
    ]
    table: Table = OptOut.__table__  # type: ignore[assignment]
    return insert_ignore(session, table, rows)


def remove_opt_out(session: Session, phone: str) -> bool:
    """Take `phone` off the list (an opt-in); False when it was not on it."""
    result = session.execute(delete(OptOut).where(OptOut.phone == phone))
    return bool(getattr(result, "rowcount", 0))


def list_opt_outs(session: Session) -> Sequence[OptOut]:
    return session.scalars(select(OptOut).order_by(OptOut.created_at, OptOut.phone)).all()


def read_phones(
    path: Path, region: str, encoding: str | None = None
) -> tuple[list[str], list[str]]:
    """Phones from a CSV or plain text file: the first cell of each line; (valid, invalid).

    A header line (no digits in its first cell) is skipped rather than reported. The encoding
    is detected as for customer files (`open_csv`); a file that does not decode is refused.
    """
    valid: list[str] = []
    invalid: list[str] = []
    source = open_csv(path, encoding)
    if source.failure is not None:
        raise CampaignerError(f"{path}: {source.failure}; nothing was imported")
    for _, row, _ in source.rows():
        cell = row[0].strip() if row else ""
        if not cell or not any(ch.isdigit() for ch in cell):
            continue
        try:
            valid.append(normalize_phone(cell, region))
        except InvalidPhone:
            invalid.append(cell)
    return valid, invalid


def import_opt_outs(
    session: Session,
    path: Path,
    region: str,
    now: datetime,
    *,
    source: str = "import",
    encoding: str | None = None,
) -> OptOutImport:
    valid, invalid = read_phones(path, region, encoding)
    added = add_opt_outs(session, valid, now, source=source)
    return OptOutImport(added=added, already=len(set(valid)) - added, invalid=invalid)
