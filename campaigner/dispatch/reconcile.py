"""Settle `unknown` rows by asking the gateway that carried them what happened.

A gateway answers per message "sent", "delivered", "undelivered", "failed", or "not_found"
(it never received it, so the row may safely be queued again). Rows whose gateway cannot
look messages up stay `unknown` for a person to settle (`campaigner unknown resolve`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import Clock
from campaigner.db.models import Message, MessageStatus
from campaigner.dispatch.ledger import expire_leases, failed, released, write_unknown
from campaigner.dispatch.report import ReconcileReport
from campaigner.dispatch.routes import Route, Routes
from campaigner.gateways.base import OutgoingMessage

logger = logging.getLogger(__name__)

LOOKUP_SIZE = 100


def reconcile_unknown(
    sessions: sessionmaker[Session], clock: Clock, routes: Routes, limit: int = 1000
) -> ReconcileReport:
    now = clock.now()
    expire_leases(sessions, now)
    report = ReconcileReport()
    with sessions() as session:
        rows = session.execute(
            select(
                Message.id,
                Message.phone,
                Message.text,
                Message.encoding,
                Message.gateway,
                Message.provider_id,
            )
            .where(Message.status == MessageStatus.UNKNOWN)
            .order_by(Message.id)
            .limit(limit)
        ).all()
    report.checked = len(rows)
    groups: defaultdict[str, list[Any]] = defaultdict(list)
    for row in rows:
        groups[row.gateway or routes.primary.label].append(row)
    by_label = routes.by_label
    for label, group in groups.items():
        route = by_label.get(label)
        if route is None or not route.gateway.supports_status:
            report.still_unknown += len(group)
            continue
        for start in range(0, len(group), LOOKUP_SIZE):
            updates = _look_up(route, group[start : start + LOOKUP_SIZE], now, report)
            with sessions.begin() as session:
                write_unknown(session, updates)
    return report


def _look_up(
    route: Route, rows: Sequence[Any], now: datetime, report: ReconcileReport
) -> list[dict[str, Any]]:
    outgoing = [
        OutgoingMessage(
            row.id,
            row.phone or "",
            row.text or "",
            row.encoding or "gsm7",
            provider_id=row.provider_id,
        )
        for row in rows
    ]
    try:
        answers = route.gateway.status(outgoing)
    except Exception as exc:
        logger.error("gateway %s: status lookup failed: %s", route.label, exc)
        report.still_unknown += len(rows)
        return []
    by_id = {a.message_id: a for a in answers if a.message_id is not None}
    by_provider = {a.provider_id: a for a in answers if a.provider_id}
    updates = []
    for row in rows:
        answer = by_id.get(row.id) or by_provider.get(row.provider_id)
        status = answer.status if answer is not None else None
        if answer is None or status is None:
            report.still_unknown += 1
            continue
        base: dict[str, Any] = {"id": row.id, "claim": None, "lease_until": None, "updated_at": now}
        if status == "not_found":
            updates.append({**released(row.id, now), "reason": "not_received"})
        elif status in ("sent", "delivered", "undelivered"):
            base.update(status=status, reason=None, sent_at=now)
            if answer.provider_id:
                base["provider_id"] = answer.provider_id
            if status == "delivered":
                base["delivered_at"] = now
            updates.append(base)
        elif status == "failed":
            error = answer.error or answer.code or "failed at the gateway"
            updates.append(failed(row.id, "rejected", error, now))
        else:
            report.still_unknown += 1
            continue
        report.updated[status] += 1
    return updates
