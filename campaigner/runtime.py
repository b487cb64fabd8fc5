"""The engine assembled from settings: rules, renderer, gateways, planner and dispatcher.

`campaigner run`, `run --once`, `simulate` and `preview` all build it here, so a rehearsal
runs exactly the code the daemon runs, only with another clock, database and gateway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, configure_mappers, sessionmaker

from campaigner.announcements.guard import moved_announcements
from campaigner.announcements.withdraw import withdraw
from campaigner.clock import Clock
from campaigner.config import Settings
from campaigner.db.models import Message
from campaigner.dispatch import Dispatcher, DispatchReport, Rendered, RenderError
from campaigner.dispatch.routes import fallback_label
from campaigner.gateways import Gateway, create_gateway
from campaigner.messages.render import MessageRenderer
from campaigner.planner import PlanReport, RulePlan, Unplanned, plan, unplanned
from campaigner.policy import RulePolicy
from campaigner.products.recheck import stopped_holding
from campaigner.quarantine import Quarantine
from campaigner.rulebook import Rulebook
from campaigner.rules.models import Rule
from campaigner.timezones import zone_or

log = logging.getLogger("campaigner")


def rule_policy(rule: Rule | None) -> RulePolicy:
    """A rule's own sending terms; a rule that disappeared sends under the global ones."""
    if rule is None:
        return RulePolicy()
    return RulePolicy(
        priority=rule.priority,
        window=rule.send_window,
        max_per_day=rule.max_per_day,
        max_per_week=rule.max_per_week,
        transactional=rule.transactional,
    )


class RuleForecast:
    """The dispatcher's look ahead: what the enabled marketing rules will plan, and when."""

    def __init__(self, rulebook: Rulebook, settings: Settings) -> None:
        self.rulebook = rulebook
        self.default_zone = settings.customers.timezone
        self.occasions = settings.occasions.overrides

    def __call__(
        self,
        session: Session,
        phones: Collection[str],
        zones: Collection[str],
        now: datetime,
        until: datetime,
        min_priority: int,
    ) -> Sequence[Unplanned]:
        rules = [
            rule
            for rule in self.rulebook.enabled()
            if not rule.transactional and rule.priority >= min_priority
        ]
        named = {name: zone_or(name, self.default_zone) for name in zones}
        return unplanned(session, rules, phones, named, now, until, self.occasions)


class RuleRecheck:
    """The dispatcher's send-time re-check of what a rule planned on: each claimed row's
    rule asked about its rows (`products.recheck`); a rule that disappeared asks nothing."""

    def __init__(self, rulebook: Rulebook) -> None:
        self.rulebook = rulebook

    def __call__(
        self, session: Session, messages: Sequence[Message], now: datetime
    ) -> dict[int, str]:
        by_rule: dict[str, list[int]] = {}
        for message in messages:
            by_rule.setdefault(message.rule, []).append(message.id)
        gone: dict[int, str] = {}
        for name, ids in sorted(by_rule.items()):
            rule = self.rulebook.get(name)
            if rule is not None:
                gone.update(stopped_holding(session, rule, ids, now))
        return gone


class RuleRenderer:
    """The dispatcher's renderer: finds the row's rule and renders its template, from the
    template sources that rule was checked with."""

    def __init__(self, rulebook: Rulebook, settings: Settings, clock: Clock) -> None:
        self.rulebook = rulebook
        self.settings = settings
        self.clock = clock

    def render(self, session: Session, message: Message) -> Rendered:
        entry = self.rulebook.entry(message.rule)
        if entry is None:
            raise RenderError("rule removed")
        renderer = MessageRenderer(self.settings, entry.templates)
        return renderer.render(session, message, entry.rule, self.clock.now())


def webhook_base(settings: Settings) -> str:
    """Where providers reach the daemon's webhooks (server.public_url, or host:port)."""
    if settings.server.public_url:
        return settings.server.public_url.rstrip("/")
    return f"http://{settings.server.host}:{settings.server.port}"


def build_gateway(settings: Settings, name: str | None = None, **extra: Any) -> Gateway:
    """The primary gateway, or the `[gateways.NAME]` table called `name` (the fallback).

    Callbacks the gateway hands out per message (Kannel's dlr-url, Twilio's StatusCallback)
    point at its route label, `/webhooks/LABEL/...`, so they reach this very instance. Its
    webhooks need its own `webhook_token` if it has one, else `server.webhook_token`.
    """
    if name is None:
        gateway_settings, label = settings.gateway, settings.gateway.name
    else:
        gateway_settings = settings.gateways[name]
        label = fallback_label(settings.gateway.name, name)
    token = gateway_settings.webhook_token or settings.server.webhook_token
    return create_gateway(
        gateway_settings,
        webhook_url=f"{webhook_base(settings)}/webhooks/{label}",
        webhook_token=token.get_secret_value() if token else "",
        **extra,
    )


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    sessions: sessionmaker[Session]
    rulebook: Rulebook
    gateway: Gateway
    fallback: Gateway | None
    dispatcher: Dispatcher
    last_plan: PlanReport = field(default_factory=PlanReport)
    quarantine: Quarantine = field(default_factory=Quarantine)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        clock: Clock,
        sessions: sessionmaker[Session],
        gateway: Gateway | None = None,
        rulebook: Rulebook | None = None,
    ) -> Runtime:
        """Everything wired from settings; `gateway` replaces the configured one (simulate)."""
        # SQLAlchemy sets the models' mappers up on their first use: paid here, at start, and
        # not inside the first batch a dispatch pass sends (about 60 ms here, once).
        configure_mappers()
        rulebook = rulebook or Rulebook(
            settings, guard=lambda loaded: moved_announcements(sessions, loaded)
        )
        fallback = None
        if gateway is None:
            gateway = build_gateway(settings)
            if settings.gateway.fallback:
                fallback = build_gateway(settings, settings.gateway.fallback)
        dispatcher = Dispatcher(
            sessions,
            gateway,
            clock,
            settings,
            renderer=RuleRenderer(rulebook, settings, clock),
            policies=lambda name: rule_policy(rulebook.get(name)),
            forecast=RuleForecast(rulebook, settings),
            recheck=RuleRecheck(rulebook),
            fallback_gateway=fallback,
        )
        return cls(settings, clock, sessions, rulebook, gateway, fallback, dispatcher)

    @property
    def gateways(self) -> dict[str, Gateway]:
        """Each route's label (the `gateway` stored on the rows it sent) -> its gateway."""
        return {route.label: route.gateway for route in self.dispatcher.routes.all}

    def plan(self, triggers: Collection[str] | None = None) -> PlanReport:
        """One planning pass over the enabled rules (of these triggers); logs what it did.

        A rule that fails is set aside (see `campaigner.quarantine`) and reported with its
        error; the others plan as usual.
        """
        now = self.clock.now()
        rules = [r for r in self.rulebook.enabled() if triggers is None or r.trigger in triggers]
        held = {
            rule.name: failure for rule in rules if (failure := self.quarantine.holds(rule, now))
        }
        due = [rule for rule in rules if rule.name not in held]
        with self.sessions.begin() as session:
            broken = {problem.rule for problem in self.rulebook.problems if problem.rule}
            cancelled = withdraw(session, self.rulebook.enabled(), now, broken)
            report = plan(session, due, self.clock, self.settings)
            report.cancelled = cancelled
        if cancelled:
            log.info("withdrawn announcements: cancelled %d queued message(s)", cancelled)
        for rule in due:
            result = report.rules.get(rule.name)
            if result is None or result.locked:
                continue
            if result.error is None:
                self.quarantine.succeeded(rule.name)
                continue
            failure = self.quarantine.failed(rule, result.error, now)
            result.skipped_until = failure.retry_at
            log.error(
                "plan %s failed (%d in a row): %s; next try at %s or when its file changes",
                rule.name,
                failure.failures,
                failure.error,
                f"{failure.retry_at:%Y-%m-%d %H:%M:%S} UTC",
            )
        for name, failure in held.items():
            report.rules[name] = RulePlan(error=failure.error, skipped_until=failure.retry_at)
            log.debug("plan %s: skipped until %s after failing", name, failure.retry_at)
        self.quarantine.keep_only(self.rulebook.names())
        for name, result in report.rules.items():
            if result.locked:
                log.debug("plan %s: skipped, another instance is planning it", name)
            elif result.planned or result.held_out:
                log.info("plan %s: planned %d, held out %d", name, result.planned, result.held_out)
        self.last_plan = report
        return report

    def dispatch(self, stop: Callable[[], bool] = lambda: False) -> DispatchReport:
        """One dispatch batch; logs what happened to it."""
        report = self.dispatcher.dispatch_once(stop)
        log_dispatch(report)
        return report

    def drain(
        self,
        stop: Callable[[], bool] = lambda: False,
        after_batch: Callable[[DispatchReport], None] = lambda _report: None,
    ) -> DispatchReport:
        """Dispatch until nothing is due, the circuit pauses sending, or `stop()` says so
        (checked before each request: the requests in flight finish, the rest of the batch
        goes back to the queue)."""
        total = DispatchReport()
        while not stop():
            report = self.dispatch(stop)
            after_batch(report)
            total.add(report)
            if report.paused or report.claimed == 0:
                break
        return total

    def close(self) -> None:
        self.dispatcher.close()
        self.gateway.close()
        if self.fallback is not None:
            self.fallback.close()


def log_dispatch(report: DispatchReport) -> None:
    if not (report.claimed or report.unknown or report.paused):
        return
    skipped = ", ".join(f"{reason}={count}" for reason, count in sorted(report.skipped.items()))
    log.info(
        "dispatch via %s: claimed %d, sent %d, failed %d, deferred %d, retried %d, expired %d, "
        "unknown %d%s%s",
        report.gateway or "-",
        report.claimed,
        report.sent,
        report.failed,
        report.deferred,
        report.retried,
        report.expired,
        report.unknown,
        f", skipped {skipped}" if skipped else "",
        " (paused: circuit open)" if report.paused else "",
    )
