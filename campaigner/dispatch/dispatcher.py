"""Claim due messages, apply the sending policy, render, send, record.

Each message goes out at most once: a row is `sending` under a lease before any gateway
sees it, and only an answer from the gateway moves it on. A row whose answer was lost
becomes `unknown` and is reconciled through the gateway, never re-sent blindly.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import Clock
from campaigner.config import GatewaySettings, Settings
from campaigner.db.models import Customer, Message, MessageStatus, OptOut
from campaigner.dispatch.breaker import CircuitBreaker, CircuitState
from campaigner.dispatch.ledger import claim_due, expire_leases, write_rows
from campaigner.dispatch.ratelimit import TokenBucket
from campaigner.dispatch.rendering import Renderer, RenderError
from campaigner.gateways.base import Gateway, GatewayError, Outcome, OutgoingMessage, SendResult
from campaigner.masking import excerpt
from campaigner.optouts import add_opt_outs
from campaigner.policy import RulePolicy, SendingPolicy

logger = logging.getLogger(__name__)

SENT_STATUSES = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.UNDELIVERED)
PAUSED_LOG_INTERVAL = timedelta(minutes=1)
MAX_ERROR_CHARS = 500


@dataclass
class DispatchReport:
    """What one dispatch pass did; `requeued` rows went back untouched (circuit open)."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    expired: int = 0
    retried: int = 0
    requeued: int = 0
    unknown: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    paused: bool = False
    gateway: str | None = None

    def add(self, other: DispatchReport) -> None:
        counts = ("claimed", "sent", "failed", "deferred", "expired", "retried", "requeued")
        for name in (*counts, "unknown"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.skipped.update(other.skipped)
        self.paused = other.paused
        self.gateway = other.gateway or self.gateway


@dataclass
class ReconcileReport:
    checked: int = 0
    updated: Counter[str] = field(default_factory=Counter)
    still_unknown: int = 0


@dataclass
class _Route:
    """One gateway with its own breaker, rate limit and pool of in-flight requests."""

    label: str
    gateway: Gateway
    settings: GatewaySettings
    breaker: CircuitBreaker
    bucket: TokenBucket
    pool: ThreadPoolExecutor


@dataclass(frozen=True)
class _Job:
    outgoing: OutgoingMessage
    attempts: int
    customer_id: int


@dataclass
class _Answer:
    """What became of one request: results, a whole-request error, or not attempted."""

    attempted: bool = True
    results: list[SendResult] | None = None
    error: GatewayError | None = None
    crash: str | None = None


@dataclass(frozen=True)
class _Rival:
    """A message for the same phone that another dispatcher is sending right now."""

    key: tuple[int, datetime, int]
    transactional: bool


def _precedence(message: Message) -> tuple[int, datetime, int]:
    """Higher priority first, then the older due time (then the older row)."""
    return (-message.priority, message.due_at, message.id)


class Dispatcher:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        gateway: Gateway,
        clock: Clock,
        settings: Settings,
        *,
        renderer: Renderer,
        policies: Callable[[str], RulePolicy],
        fallback_gateway: Gateway | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        breaker_threshold: int = 5,
        breaker_cooldown: timedelta = timedelta(seconds=60),
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.sending = settings.sending
        self.policy = SendingPolicy(settings.sending, settings.customers.timezone)
        self.renderer = renderer
        self.policies = policies
        self.rng = rng or random.Random()
        self._sleep = sleep
        self._breaker_args: dict[str, Any] = {
            "threshold": breaker_threshold,
            "cooldown": breaker_cooldown,
        }
        self.primary = self._route(gateway.name, gateway, settings.gateway)
        self.fallback: _Route | None = None
        if fallback_gateway is not None:
            name = settings.gateway.fallback or "fallback"
            label = name if name != self.primary.label else f"{name}-fallback"
            fallback_settings = settings.gateways.get(name, fallback_gateway.settings)
            self.fallback = self._route(label, fallback_gateway, fallback_settings)
        self._paused_logged_at: datetime | None = None

    def _route(self, label: str, gateway: Gateway, settings: GatewaySettings) -> _Route:
        return _Route(
            label=label,
            gateway=gateway,
            settings=settings,
            breaker=CircuitBreaker(self.clock, **self._breaker_args),
            bucket=TokenBucket(settings.rate_per_second, self.clock, self._sleep),
            pool=ThreadPoolExecutor(settings.max_in_flight, thread_name_prefix=f"send-{label}"),
        )

    @property
    def routes(self) -> list[_Route]:
        return [self.primary] if self.fallback is None else [self.primary, self.fallback]

    @property
    def circuit(self) -> dict[str, CircuitState]:
        """Circuit state per gateway, for `status` and health checks."""
        return {route.label: route.breaker.state for route in self.routes}

    def close(self) -> None:
        for route in self.routes:
            route.pool.shutdown(wait=True)

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- one pass ---------------------------------------------------------------------------

    def dispatch_once(self) -> DispatchReport:
        """Claim one batch of due messages and see each one to its next state."""
        now = self.clock.now()
        report = DispatchReport(unknown=expire_leases(self.sessions, now))
        route = self._choose_route()
        if route is None:
            report.paused = True
            self._log_paused(now)
            return report
        report.gateway = route.label
        lease_until = now + timedelta(seconds=self.sending.lease_seconds)
        size = self._claim_size(route)
        ids = claim_due(self.sessions, now, size, gateway=route.label, lease_until=lease_until)
        report.claimed = len(ids)
        if ids:
            try:
                jobs = self._prepare(ids, now, route, report)
            except Exception:
                # Nothing reached a gateway yet: hand the batch back rather than strand it.
                with self.sessions.begin() as session:
                    write_rows(session, [_requeue(row_id, now) for row_id in ids])
                raise
            if jobs:
                self._send(route, jobs, report)
        return report

    def drain(self, max_passes: int = 1_000_000) -> DispatchReport:
        """Dispatch until nothing due is left (or the circuit pauses dispatch)."""
        total = DispatchReport()
        for _ in range(max_passes):
            report = self.dispatch_once()
            total.add(report)
            if report.paused or report.claimed == 0:
                break
        return total

    def _choose_route(self) -> _Route | None:
        for route in self.routes:
            if route.breaker.available():
                return route
        return None

    def _claim_size(self, route: _Route) -> int:
        size = self.sending.batch_size
        if route.breaker.probing():
            size = min(size, route.gateway.max_batch)
        rate = route.settings.rate_per_second
        if rate > 0:
            # Everything claimed must go out well within the lease, even at the rate limit.
            size = min(size, max(1, int(rate * self.sending.lease_seconds / 2)))
        return size

    def _log_paused(self, now: datetime) -> None:
        last = self._paused_logged_at
        if last is not None and now - last < PAUSED_LOG_INTERVAL:
            return
        self._paused_logged_at = now
        for route in self.routes:
            logger.error(
                "dispatch paused: gateway %s circuit open (%s); messages stay queued; "
                "next probe at %s",
                route.label,
                route.breaker.last_error,
                route.breaker.retry_at,
            )

    # -- policy and rendering ---------------------------------------------------------------

    def _prepare(
        self, ids: Sequence[int], now: datetime, route: _Route, report: DispatchReport
    ) -> list[_Job]:
        sender = route.settings.sender
        rows: list[dict[str, Any]] = []
        jobs: list[_Job] = []
        with self.sessions.begin() as session:
            query = (
                select(Message, Customer)
                .join(Customer, Customer.id == Message.customer_id)
                .where(Message.id.in_(ids))
            )
            pairs = [(message, customer) for message, customer in session.execute(query)]
            pairs.sort(key=lambda pair: _precedence(pair[0]))
            phones = {phone for m, c in pairs if (phone := m.phone or c.phone)}
            opted_out = self._opted_out(session, phones)
            sent, rivals = self._cap_history(session, phones, set(ids), now)
            for message, customer in pairs:
                rule = self.policies(message.rule)
                phone = message.phone or customer.phone
                verdict = self._verdict(
                    message, customer, phone, rule, now, opted_out, sent, rivals, report
                )
                if verdict is not None:
                    rows.append(verdict)
                    continue
                assert phone is not None
                try:
                    rendered = self.renderer.render(session, message)
                except RenderError as exc:
                    rows.append(_failed(message.id, exc.reason, str(exc), now))
                    report.failed += 1
                    continue
                except Exception as exc:
                    # One broken row must not stop the rest of the batch (or the daemon).
                    logger.exception("message %s (%s): rendering failed", message.id, message.rule)
                    rows.append(_failed(message.id, "render_error", repr(exc), now))
                    report.failed += 1
                    continue
                rows.append(
                    {
                        "id": message.id,
                        "phone": phone,
                        "text": rendered.text,
                        "segments": rendered.segments,
                        "encoding": rendered.encoding,
                    }
                )
                outgoing = OutgoingMessage(
                    message.id, phone, rendered.text, rendered.encoding, sender
                )
                jobs.append(_Job(outgoing, message.attempts, customer.id))
                if not rule.transactional:
                    sent[phone].append(now)
            write_rows(session, rows)
        return jobs

    def _opted_out(self, session: Session, phones: set[str]) -> set[str]:
        if not phones:
            return set()
        return set(session.scalars(select(OptOut.phone).where(OptOut.phone.in_(phones))))

    def _cap_history(
        self, session: Session, phones: set[str], mine: set[int], now: datetime
    ) -> tuple[defaultdict[str, list[datetime]], defaultdict[str, list[_Rival]]]:
        """Marketing messages already sent to these phones in the last 7 days, and those
        other dispatchers are sending right now."""
        sent: defaultdict[str, list[datetime]] = defaultdict(list)
        rivals: defaultdict[str, list[_Rival]] = defaultdict(list)
        if not phones:
            return sent, rivals
        history = session.execute(
            select(Message.phone, Message.rule, Message.sent_at).where(
                Message.phone.in_(phones),
                Message.status.in_(SENT_STATUSES),
                Message.sent_at > now - timedelta(days=7),
            )
        )
        for phone, rule, sent_at in history:
            if phone and sent_at and not self.policies(rule).transactional:
                sent[phone].append(sent_at)
        sending = session.execute(
            select(Message.id, Message.phone, Message.rule, Message.priority, Message.due_at).where(
                Message.phone.in_(phones), Message.status == MessageStatus.SENDING
            )
        )
        for row_id, phone, rule, priority, due_at in sending:
            if phone and row_id not in mine:
                rival = _Rival((-priority, due_at, row_id), self.policies(rule).transactional)
                rivals[phone].append(rival)
        return sent, rivals

    def _verdict(
        self,
        message: Message,
        customer: Customer,
        phone: str | None,
        rule: RulePolicy,
        now: datetime,
        opted_out: set[str],
        sent: defaultdict[str, list[datetime]],
        rivals: defaultdict[str, list[_Rival]],
        report: DispatchReport,
    ) -> dict[str, Any] | None:
        """The row's new state if policy stops it now; None when it may be sent."""
        skip_reason = None
        if not phone:
            skip_reason = "no_phone"
        elif customer.phone_invalid_at is not None:
            skip_reason = "invalid_number"
        elif phone in opted_out:
            skip_reason = "opted_out"
        elif not customer.marketing_consent and not rule.transactional:
            # Consent is to marketing; an order confirmation needs none (an opt-out still wins).
            skip_reason = "no_consent"
        if skip_reason is not None:
            report.skipped[skip_reason] += 1
            return _final(message.id, MessageStatus.SKIPPED, skip_reason, now)
        assert phone is not None
        if message.expires_at is not None and now > message.expires_at:
            report.expired += 1
            return _final(message.id, MessageStatus.EXPIRED, "late", now)
        zone = self.policy.zone(customer.timezone)
        opening = self.policy.next_opening(now, zone, rule)
        if opening > now:
            reason = "quiet_day" if self.policy.is_quiet(now, zone, rule) else "window"
            return self._defer(message, opening, reason, MessageStatus.EXPIRED, now, report)
        if rule.transactional:
            return None
        key = _precedence(message)
        taken = sent[phone] + [
            now for rival in rivals[phone] if rival.key < key and not rival.transactional
        ]
        if self.policy.within_caps(now, zone, rule, taken):
            return None
        later = self.policy.next_day_within_caps(now, zone, rule, taken)
        return self._defer(message, later, "cap", MessageStatus.SKIPPED, now, report)

    def _defer(
        self,
        message: Message,
        until: datetime,
        reason: str,
        late_status: MessageStatus,
        now: datetime,
        report: DispatchReport,
    ) -> dict[str, Any]:
        if message.expires_at is not None and until > message.expires_at:
            if late_status is MessageStatus.SKIPPED:
                report.skipped[reason] += 1
            else:
                report.expired += 1
            return _final(message.id, late_status, reason, now)
        report.deferred += 1
        return {
            **_requeue(message.id, now),
            "scheduled_for": until,
            "reason": reason,
        }

    # -- sending and recording --------------------------------------------------------------

    def _send(self, route: _Route, jobs: list[_Job], report: DispatchReport) -> None:
        size = max(1, route.gateway.max_batch)
        chunks = [jobs[start : start + size] for start in range(0, len(jobs), size)]
        futures = [route.pool.submit(self._send_chunk, route, chunk) for chunk in chunks]
        answers = [future.result() for future in futures]
        now = self.clock.now()
        rows: list[dict[str, Any]] = []
        invalid: set[int] = set()
        refused: set[str] = set()
        for chunk, answer in zip(chunks, answers, strict=True):
            rows.extend(self._record(route, chunk, answer, now, report, invalid, refused))
        with self.sessions.begin() as session:
            write_rows(session, rows)
            if invalid:
                session.execute(
                    update(Customer)
                    .where(Customer.id.in_(invalid), Customer.phone_invalid_at.is_(None))
                    .values(phone_invalid_at=now)
                )
            if refused:
                add_opt_outs(session, refused, now, source="gateway", reason=route.label)

    def _send_chunk(self, route: _Route, chunk: list[_Job]) -> _Answer:
        if not route.breaker.allow_request():
            return _Answer(attempted=False)
        route.bucket.acquire(len(chunk))
        try:
            results = route.gateway.send([job.outgoing for job in chunk])
        except GatewayError as exc:
            if exc.auth or exc.temporary:
                self._breaker_failure(route, f"{type(exc).__name__}: {exc}", auth=exc.auth)
            else:
                route.breaker.success()  # it answered: up, though it refused this request
            return _Answer(error=exc)
        except Exception as exc:
            # Whether the gateway got it is unknown: never guess, record `unknown`.
            logger.exception("gateway %s: unexpected error while sending", route.label)
            self._breaker_failure(route, f"{type(exc).__name__}: {exc}", auth=False)
            return _Answer(crash=f"{type(exc).__name__}: {exc}")
        if results and all(result.outcome is Outcome.TEMPORARY for result in results):
            self._breaker_failure(route, results[0].error or "temporary error", auth=False)
        else:
            route.breaker.success()
        return _Answer(results=results)

    def _breaker_failure(self, route: _Route, error: str, *, auth: bool) -> None:
        if route.breaker.failure(error, auth=auth):
            logger.error(
                "gateway %s: circuit opened (%s); dispatch paused until %s",
                route.label,
                error,
                route.breaker.retry_at,
            )

    def _record(
        self,
        route: _Route,
        chunk: list[_Job],
        answer: _Answer,
        now: datetime,
        report: DispatchReport,
        invalid: set[int],
        refused: set[str],
    ) -> list[dict[str, Any]]:
        if not answer.attempted or (answer.error is not None and answer.error.auth):
            report.requeued += len(chunk)
            return [_requeue(job.outgoing.id, now) for job in chunk]
        if answer.crash is not None:
            report.unknown += len(chunk)
            return [_unknown(job.outgoing.id, "send_error", answer.crash, now) for job in chunk]
        error = answer.error
        if error is not None:
            message = f"{type(error).__name__}: {error}"
            if error.temporary:
                return [self._retry(job, message, error.retry_after, now, report) for job in chunk]
            report.failed += len(chunk)
            return [_failed(job.outgoing.id, "rejected", message, now) for job in chunk]
        by_id = {result.message_id: result for result in answer.results or []}
        rows = []
        for job in chunk:
            result = by_id.get(job.outgoing.id)
            if result is None:
                report.unknown += 1
                rows.append(_unknown(job.outgoing.id, "no_result", "gateway gave no result", now))
            elif result.outcome is Outcome.ACCEPTED:
                report.sent += 1
                rows.append(
                    {
                        "id": job.outgoing.id,
                        "status": MessageStatus.SENT,
                        "reason": None,
                        "provider_id": result.provider_id,
                        "gateway": route.label,
                        "sent_at": now,
                        "lease_until": None,
                        "attempts": job.attempts + 1,
                        "updated_at": now,
                    }
                )
            elif result.outcome is Outcome.TEMPORARY:
                text = _error_text(result)
                rows.append(self._retry(job, text, result.retry_after, now, report))
            else:
                report.failed += 1
                reason = "invalid_number" if result.invalid_number else "rejected"
                if result.opted_out:
                    reason = "opted_out"
                    refused.add(job.outgoing.phone)
                if result.invalid_number:
                    invalid.add(job.customer_id)
                row = _failed(job.outgoing.id, reason, _error_text(result), now)
                rows.append({**row, "attempts": job.attempts + 1})
        return rows

    def _retry(
        self,
        job: _Job,
        error: str,
        retry_after: float | None,
        now: datetime,
        report: DispatchReport,
    ) -> dict[str, Any]:
        """Back to the queue after an exponential, jittered delay (never before Retry-After)."""
        attempts = job.attempts + 1
        if attempts >= self.sending.max_attempts:
            report.failed += 1
            return {**_failed(job.outgoing.id, "max_attempts", error, now), "attempts": attempts}
        report.retried += 1
        backoff = self.sending.retry_base_seconds * 2 ** (attempts - 1)
        delay = backoff / 2 + self.rng.uniform(0, backoff / 2)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return {
            **_requeue(job.outgoing.id, now),
            "scheduled_for": now + timedelta(seconds=delay),
            "attempts": attempts,
            "reason": "retry",
            "last_error": excerpt(error, MAX_ERROR_CHARS),
        }

    # -- crash recovery ---------------------------------------------------------------------

    def reconcile(self, limit: int = 1000) -> ReconcileReport:
        """Settle `unknown` rows by asking their gateway what happened to them.

        A gateway answers per message: "sent", "delivered", "undelivered", "failed", or
        "not_found" (it never received it, so the row may safely be queued again). Rows
        whose gateway cannot look messages up stay `unknown` for a person to decide.
        """
        now = self.clock.now()
        expire_leases(self.sessions, now)
        report = ReconcileReport()
        routes = {route.label: route for route in self.routes}
        with self.sessions() as session:
            unknown = session.execute(
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
        report.checked = len(unknown)
        groups: defaultdict[str, list[Any]] = defaultdict(list)
        for row in unknown:
            groups[row.gateway or self.primary.label].append(row)
        for label, rows in groups.items():
            route = routes.get(label)
            if route is None or not route.gateway.supports_status:
                report.still_unknown += len(rows)
                continue
            for start in range(0, len(rows), 100):
                chunk = rows[start : start + 100]
                updates = self._look_up(route, chunk, now, report)
                with self.sessions.begin() as session:
                    write_rows(session, updates)
        return report

    def _look_up(
        self, route: _Route, rows: Sequence[Any], now: datetime, report: ReconcileReport
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
            base: dict[str, Any] = {"id": row.id, "lease_until": None, "updated_at": now}
            if status == "not_found":
                updates.append({**_requeue(row.id, now), "reason": "not_received"})
            elif status in ("sent", "delivered", "undelivered"):
                base.update(status=status, reason=None, sent_at=now)
                if answer.provider_id:
                    base["provider_id"] = answer.provider_id
                if status == "delivered":
                    base["delivered_at"] = now
                updates.append(base)
            elif status == "failed":
                error = answer.error or answer.code or "failed at the gateway"
                updates.append(_failed(row.id, "rejected", error, now))
            else:
                report.still_unknown += 1
                continue
            report.updated[status] += 1
        return updates


def _requeue(row_id: int, now: datetime) -> dict[str, Any]:
    return {
        "id": row_id,
        "status": MessageStatus.QUEUED,
        "lease_until": None,
        "gateway": None,
        "updated_at": now,
    }


def _final(row_id: int, status: MessageStatus, reason: str, now: datetime) -> dict[str, Any]:
    return {
        "id": row_id,
        "status": status,
        "reason": reason,
        "lease_until": None,
        "updated_at": now,
    }


def _failed(row_id: int, reason: str, error: str, now: datetime) -> dict[str, Any]:
    row = _final(row_id, MessageStatus.FAILED, reason[:64], now)
    return {**row, "last_error": excerpt(error, MAX_ERROR_CHARS)}


def _unknown(row_id: int, reason: str, error: str, now: datetime) -> dict[str, Any]:
    row = _final(row_id, MessageStatus.UNKNOWN, reason, now)
    return {**row, "last_error": excerpt(error, MAX_ERROR_CHARS)}


def _error_text(result: SendResult) -> str:
    return ": ".join(part for part in (result.code, result.error) if part) or result.outcome
