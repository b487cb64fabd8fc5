"""What the gateway's answer to one request means for each of its ledger rows.

Accepted rows are `sent`; temporary errors go back to the queue with a backoff (or fail
after `max_attempts`); permanent errors fail, flagging invalid numbers and recording
operator opt-outs; a request refused for bad credentials puts its rows back untouched; and
an answer that never came (an unexpected error, or a timeout after the request left) leaves
them `unknown`: resending could send twice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from campaigner.config import SendingSettings
from campaigner.db.models import Customer, MessageStatus
from campaigner.dispatch.ledger import (
    MAX_ERROR_CHARS,
    failed,
    released,
    unknown,
    write_results,
)
from campaigner.dispatch.report import DispatchReport
from campaigner.gateways.base import GatewayError, Outcome, OutgoingMessage, SendResult
from campaigner.masking import excerpt
from campaigner.optouts import add_opt_outs


@dataclass(frozen=True)
class Job:
    """One message ready to go: its text, its attempts so far, and whose phone it is."""

    outgoing: OutgoingMessage
    attempts: int
    customer_id: int


@dataclass
class Answer:
    """What became of one request: per-message results, a whole-request error, or a crash."""

    results: list[SendResult] | None = None
    error: GatewayError | None = None
    crash: str | None = None


@dataclass
class Recorded:
    """Ledger changes from a set of answers, written together in one transaction."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    invalid_customers: set[int] = field(default_factory=set)
    refused_phones: set[str] = field(default_factory=set)

    def write(self, session: Session, claim: str, label: str, now: datetime) -> None:
        write_results(session, claim, self.rows)
        if self.invalid_customers:
            session.execute(
                update(Customer)
                .where(Customer.id.in_(self.invalid_customers), Customer.phone_invalid_at.is_(None))
                .values(phone_invalid_at=now)
            )
        if self.refused_phones:
            add_opt_outs(session, self.refused_phones, now, source="gateway", reason=label)


class Recorder:
    def __init__(self, sending: SendingSettings, rng: random.Random) -> None:
        self.sending = sending
        self.rng = rng

    def record(
        self,
        label: str,
        chunk: list[Job],
        answer: Answer,
        now: datetime,
        report: DispatchReport,
        into: Recorded,
    ) -> None:
        error = answer.error
        if error is not None and error.auth:
            report.requeued += len(chunk)
            into.rows.extend(released(job.outgoing.id, now) for job in chunk)
            return
        crash = answer.crash
        if error is not None and error.maybe_sent:
            crash = f"{type(error).__name__}: {error}"  # e.g. a read timeout after sending
        if crash is not None:
            report.unknown += len(chunk)
            into.rows.extend(unknown(job.outgoing.id, "send_error", crash, now) for job in chunk)
            return
        if error is not None:
            message = f"{type(error).__name__}: {error}"
            if error.temporary:
                into.rows.extend(
                    self._retry(job, message, error.retry_after, now, report) for job in chunk
                )
            else:
                report.failed += len(chunk)
                into.rows.extend(failed(job.outgoing.id, "rejected", message, now) for job in chunk)
            return
        by_id = {result.message_id: result for result in answer.results or []}
        for job in chunk:
            result = by_id.get(job.outgoing.id)
            if result is None:
                report.unknown += 1
                into.rows.append(
                    unknown(job.outgoing.id, "no_result", "gateway gave no result", now)
                )
            elif result.outcome is Outcome.ACCEPTED:
                report.sent += 1
                into.rows.append(_sent(job, result, label, now))
            elif result.outcome is Outcome.TEMPORARY:
                into.rows.append(
                    self._retry(job, _error_text(result), result.retry_after, now, report)
                )
            else:
                report.failed += 1
                reason = "invalid_number" if result.invalid_number else "rejected"
                if result.opted_out:
                    reason = "opted_out"
                    into.refused_phones.add(job.outgoing.phone)
                if result.invalid_number:
                    into.invalid_customers.add(job.customer_id)
                row = failed(job.outgoing.id, reason, _error_text(result), now)
                into.rows.append({**row, "attempts": job.attempts + 1})

    def _retry(
        self,
        job: Job,
        error: str,
        retry_after: float | None,
        now: datetime,
        report: DispatchReport,
    ) -> dict[str, Any]:
        """Back to the queue after an exponential, jittered delay (never before Retry-After)."""
        attempts = job.attempts + 1
        if attempts >= self.sending.max_attempts:
            report.failed += 1
            return {**failed(job.outgoing.id, "max_attempts", error, now), "attempts": attempts}
        report.retried += 1
        backoff = self.sending.retry_base_seconds * 2 ** (attempts - 1)
        delay = backoff / 2 + self.rng.uniform(0, backoff / 2)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return {
            **released(job.outgoing.id, now),
            "scheduled_for": now + timedelta(seconds=delay),
            "attempts": attempts,
            "reason": "retry",
            "last_error": excerpt(error, MAX_ERROR_CHARS),
        }


def _sent(job: Job, result: SendResult, label: str, now: datetime) -> dict[str, Any]:
    return {
        "id": job.outgoing.id,
        "status": MessageStatus.SENT,
        "reason": None,
        "provider_id": result.provider_id,
        "gateway": label,
        "sent_at": now,
        "claim": None,
        "lease_until": None,
        "attempts": job.attempts + 1,
        "updated_at": now,
    }


def _error_text(result: SendResult) -> str:
    return ": ".join(part for part in (result.code, result.error) if part) or result.outcome
