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
class PhoneLines:
    """What a file of phone numbers holds: numbers, and lines that give none (with why)."""

    valid: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (line, why)

    @property
    def header_only(self) -> bool:
        """Nothing but a header line (read_phones refuses a file without even that)."""
        return not (self.valid or self.invalid or self.skipped)


@dataclass
class OptOutImport:
    added: int = 0
    already: int = 0
    invalid: list[str] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (line, why)
    header_only: bool = False  # an export of nobody: said so, rather than "0 added"


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


def read_phones(path: Path, region: str, encoding: str | None = None) -> PhoneLines:
    """Phones from a CSV or plain text file: the first cell of each line.

    The first line is a header when its first cell has no digits; any other line without a
    number (no digits, nothing, or a row csv cannot read) is reported with its line number,
    never dropped silently: a list of numbers that must get nothing may not lose one unseen.
    The encoding is detected as for customer files (`open_csv`); a file that does not
    decode is refused, and so is an empty one (nothing, or blank lines only), as a customers
    file is: an export that came out empty is a mistake to be told of, not "0 added".
    """
    found = PhoneLines()
    source = open_csv(path, encoding)
    if source.failure is not None:
        raise CampaignerError(f"{path}: {source.failure}; nothing was imported")
    empty = True
    for line, row, unreadable in source.rows():
        empty = empty and unreadable is None and not any(c.strip() for c in row or [])
        cell = row[0].strip() if row else ""
        if unreadable is not None:
            found.skipped.append((line, unreadable))
        elif not any(ch.isdigit() for ch in cell):
            if line > 1 and (cell or any(c.strip() for c in row or [])):
                found.skipped.append((line, f"no phone number: {cell[:80]!r}"))
        else:
            try:
                found.valid.append(normalize_phone(cell, region))
            except InvalidPhone:
                found.invalid.append(cell)
    if empty:
        raise CampaignerError(
            f"{path}: the file is empty; expected a phone number per line, or a CSV with the "
            "numbers in its first column"
        )
    return found


def import_opt_outs(
    session: Session,
    path: Path,
    region: str,
    now: datetime,
    *,
    source: str = "import",
    encoding: str | None = None,
) -> OptOutImport:
    found = read_phones(path, region, encoding)
    added = add_opt_outs(session, found.valid, now, source=source)
    return OptOutImport(
        added=added,
        already=len(set(found.valid)) - added,
        invalid=found.invalid,
        skipped=found.skipped,
        header_only=found.header_only,
    )
