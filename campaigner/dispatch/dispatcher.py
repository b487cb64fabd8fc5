"""One dispatch pass: claim due messages, apply the sending policy, render, send, record.

Each message goes out at most once: a row is claimed under a lease (still `queued`), becomes
`sending` only when its own request starts, and only an answer from the gateway moves it
on. A crash strands only the requests in flight: their rows become `unknown` and are
reconciled through the gateway or settled by hand, never re-sent blindly; rows claimed but
not started go back to the queue untouched when the lease lapses.

The pieces: `ledger` (the writes), `routes` (primary and fallback gateways), `verdicts`
(the policy at send time), `sender` (requests in flight), `recording` (answers to rows),
`reconcile` (status lookups).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import Clock
from campaigner.config import Settings
from campaigner.db.models import Customer, Message
from campaigner.dispatch.breaker import CircuitBreaker, CircuitState
from campaigner.dispatch.ledger import claim_due, expire_leases, failed, release, write_claimed
from campaigner.dispatch.reconcile import reconcile_unknown
from campaigner.dispatch.recording import Job, Recorder
from campaigner.dispatch.rendering import Renderer, RenderError
from campaigner.dispatch.report import DispatchReport, ReconcileReport
from campaigner.dispatch.routes import Route, Routes, fallback_label
from campaigner.dispatch.sender import Sender
from campaigner.dispatch.verdicts import Forecast, Recheck, Verdicts, precedence
from campaigner.gateways.base import Gateway, OutgoingMessage
from campaigner.messages.coupons import CouponBatch, CouponCodeTaken
from campaigner.messages.referrals import ReferralBatch, ReferralCodeTaken
from campaigner.policy import RulePolicy, SendingPolicy

logger = logging.getLogger(__name__)


def _never() -> bool:
    return False


class BatchPolicies:
    """Each rule's sending terms, looked up once per batch.

    A batch asks for them several times per message (the verdict, the caps history, the
    rivals), and the rulebook builds them anew each time; a batch also sees one version of
    each rule, even if the rules reload meanwhile.
    """

    def __init__(self, lookup: Callable[[str], RulePolicy]) -> None:
        self.lookup = lookup
        self.known: dict[str, RulePolicy] = {}

    def __call__(self, name: str) -> RulePolicy:
        found = self.known.get(name)
        if found is None:
            found = self.known[name] = self.lookup(name)
        return found

    def forget(self) -> None:
        self.known.clear()


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
        forecast: Forecast | None = None,
        recheck: Recheck | None = None,
        fallback_gateway: Gateway | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        breaker_threshold: int = 5,
        breaker_cooldown: timedelta = timedelta(seconds=60),
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.sending = settings.sending
        self.renderer = renderer
        self.policies = BatchPolicies(policies)
        self.verdicts = Verdicts(
            SendingPolicy(settings.sending, settings.customers.timezone),
            self.policies,
            forecast,
            recheck,
        )
        lease = timedelta(seconds=settings.sending.lease_seconds)
        recorder = Recorder(settings.sending, rng or random.Random())
        self.sender = Sender(sessions, clock, recorder, lease)

        def breaker() -> CircuitBreaker:
            return CircuitBreaker(clock, threshold=breaker_threshold, cooldown=breaker_cooldown)

        primary = Route.build(gateway.name, gateway, settings.gateway, clock, sleep, breaker)
        fallback = None
        if fallback_gateway is not None:
            table = settings.gateway.fallback
            label = fallback_label(primary.label, table)
            fallback_settings = settings.gateways.get(table, fallback_gateway.settings)
            fallback = Route.build(
                label, fallback_gateway, fallback_settings, clock, sleep, breaker
            )
        self.routes = Routes(primary, fallback)
        for route in self.routes.all:
            _warn_if_capped(route, self.sending.batch_size)

    @property
    def circuit(self) -> dict[str, CircuitState]:
        """Circuit state per gateway, for `status` and health checks."""
        return self.routes.circuit

    def close(self) -> None:
        self.routes.close()

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def dispatch_once(self, stop: Callable[[], bool] = _never) -> DispatchReport:
        """Claim one batch of due messages and see each one to its next state.

        `stop()` is asked before each request starts: once it says so, the rest of the
        batch goes back to the queue untouched while the requests in flight finish.
        """
        now = self.clock.now()
        self.policies.forget()
        report = DispatchReport(unknown=expire_leases(self.sessions, now))
        route = self.routes.choose()
        if route is None:
            report.paused = True
            self.routes.log_paused(now)
            return report
        report.gateway = route.label
        claim = uuid.uuid4().hex
        lease_until = now + timedelta(seconds=self.sending.lease_seconds)
        size = self._claim_size(route)
        ids = claim_due(self.sessions, now, size, claim=claim, lease_until=lease_until)
        report.claimed = len(ids)
        if not ids:
            return report
        try:
            jobs = self._prepare(ids, claim, now, route, report)
            started = self.sender.send(route, jobs, claim, report, stop) if jobs else set()
        except (CouponCodeTaken, ReferralCodeTaken) as exc:
            logger.warning("dispatch: %s; the batch goes again with new codes", exc)
            report.requeued += release(self.sessions, claim, ids, self.clock.now())
            return report
        except BaseException:
            release(self.sessions, claim, ids, self.clock.now())  # free now, not at lease end
            raise
        # Jobs that never started (the circuit opened, or a stop was asked) are free again.
        left = [job.outgoing.id for job in jobs if job.outgoing.id not in started]
        report.requeued += release(self.sessions, claim, left, self.clock.now())
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

    def reconcile(self, limit: int = 1000) -> ReconcileReport:
        """Settle `unknown` rows through the status lookup of the gateway that carried them."""
        return reconcile_unknown(self.sessions, self.clock, self.routes, limit)

    def _claim_size(self, route: Route) -> int:
        size = self.sending.batch_size
        if route.breaker.probing():
            size = min(size, route.gateway.max_batch)
        rate = route.settings.rate_per_second
        if rate > 0:
            # Everything claimed should start well within the lease, even at the rate limit.
            size = min(size, max(1, int(rate * self.sending.lease_seconds / 2)))
        return size

    def _prepare(
        self, ids: Sequence[int], claim: str, now: datetime, route: Route, report: DispatchReport
    ) -> list[Job]:
        """Policy and rendering for the claimed rows; the ones that may go out, in order."""
        sender = route.settings.sender
        rows: list[dict[str, Any]] = []
        jobs: list[Job] = []
        with self.sessions.begin() as session:
            query = (
                select(Message, Customer)
                .join(Customer, Customer.id == Message.customer_id)
                .where(Message.id.in_(ids))
            )
            pairs = [(message, customer) for message, customer in session.execute(query)]
            pairs.sort(key=lambda pair: precedence(pair[0]))
            around = self.verdicts.neighbours(session, pairs, now, claim)
            coupons = CouponBatch.begin(session)
            referrals = ReferralBatch.begin(session)
            for message, customer in pairs:
                rule = self.policies(message.rule)
                phone = message.phone or customer.phone
                verdict = self.verdicts.verdict(message, customer, phone, rule, now, around, report)
                if verdict is not None:
                    rows.append(verdict)
                    continue
                assert phone is not None
                try:
                    rendered = self.renderer.render(session, message)
                except RenderError as exc:
                    rows.append(failed(message.id, exc.reason, str(exc), now))
                    report.failed += 1
                    continue
                except Exception as exc:
                    # One broken row must not stop the rest of the batch (or the daemon).
                    logger.exception("message %s (%s): rendering failed", message.id, message.rule)
                    rows.append(failed(message.id, "render_error", repr(exc), now))
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
                jobs.append(Job(outgoing, message.attempts, customer.id))
                if not rule.transactional:
                    around.sent[phone].append(now)
            coupons.flush(session)
            referrals.flush(session)
            write_claimed(session, claim, rows)
        return jobs


def _warn_if_capped(route: Route, batch_size: int) -> None:
    """Say so when a claimed batch makes fewer requests than `max_in_flight`: the sender
    never runs more requests than one batch holds, so the setting would be capped silently.
    Only a value someone chose: the default 4 is more than a batch gateway needs (Kavenegar's
    default batch makes 3 requests), and a warning at every start would teach operators to
    ignore warnings."""
    requests = -(-batch_size // max(1, route.gateway.max_batch))
    chosen = "max_in_flight" in route.settings.model_fields_set
    if chosen and route.max_in_flight > requests:
        logger.warning(
            "gateway %s: max_in_flight = %d, but a batch of sending.batch_size = %d messages "
            "makes only %d requests (%d messages each), so at most %d run at once; raise "
            "sending.batch_size to at least %d",
            route.label,
            route.max_in_flight,
            batch_size,
            requests,
            max(1, route.gateway.max_batch),
            requests,
            route.max_in_flight * max(1, route.gateway.max_batch),
        )
