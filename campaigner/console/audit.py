"""The audit log: every change made through the console, with a diff for files."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigner.db.models import AuditEntry


def record(
    session: Session, now: datetime, user: str, action: str, target: str, detail: str = ""
) -> None:
    session.add(AuditEntry(at=now, user_name=user, action=action, target=target, detail=detail))


def file_diff(path: str, before: str, after: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"{path} (before)",
            tofile=f"{path} (after)",
        )
    )


def entries(session: Session, limit: int = 200) -> Sequence[AuditEntry]:
    return session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)).all()
