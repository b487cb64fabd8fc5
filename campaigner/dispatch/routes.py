"""The gateways a dispatcher sends through: the primary and an optional fallback.

Each route has its own circuit breaker, rate limit and pool of in-flight requests, and a
label: the name stored in each ledger row's `gateway` column, by which reconciliation and
delivery reports find the gateway that actually carried the message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from campaigner.clock import Clock
from campaigner.config import GatewaySettings, Settings
from campaigner.dispatch.breaker import CircuitBreaker, CircuitState
from campaigner.dispatch.ratelimit import TokenBucket
from campaigner.gateways.base import Gateway

logger = logging.getLogger(__name__)

PAUSED_LOG_INTERVAL = timedelta(minutes=1)


def fallback_label(primary: str, table: str) -> str:
    """The fallback's label: its `[gateways.NAME]` table name, unless the primary has it."""
    name = table or "fallback"
    return name if name != primary else f"{name}-fallback"


def route_providers(settings: Settings) -> dict[str, str]:
    """Each configured route's label -> the provider (gateway name) behind it."""
    primary = settings.gateway
    providers = {primary.name: primary.name}
    if primary.fallback and primary.fallback in settings.gateways:
        label = fallback_label(primary.name, primary.fallback)
        providers[label] = settings.gateways[primary.fallback].name
    return providers


@dataclass
class Route:
    """One gateway with its own breaker, rate limit and pool of in-flight requests."""

    label: str
    gateway: Gateway
    settings: GatewaySettings
    breaker: CircuitBreaker
    bucket: TokenBucket
    pool: ThreadPoolExecutor

    @classmethod
    def build(
        cls,
        label: str,
        gateway: Gateway,
        settings: GatewaySettings,
        clock: Clock,
        sleep: Callable[[float], None],
        breaker: Callable[[], CircuitBreaker],
    ) -> Route:
        return cls(
            label=label,
            gateway=gateway,
            settings=settings,
            breaker=breaker(),
            bucket=TokenBucket(settings.rate_per_second, clock, sleep),
            pool=ThreadPoolExecutor(settings.max_in_flight, thread_name_prefix=f"send-{label}"),
        )

    @property
    def max_in_flight(self) -> int:
        return self.settings.max_in_flight


class Routes:
    """The primary while its circuit is closed, else the fallback; none while both are open."""

    def __init__(self, primary: Route, fallback: Route | None = None) -> None:
        self.primary = primary
        self.fallback = fallback
        self._paused_logged_at: datetime | None = None

    @property
    def all(self) -> list[Route]:
        return [self.primary] if self.fallback is None else [self.primary, self.fallback]

    @property
    def by_label(self) -> dict[str, Route]:
        return {route.label: route for route in self.all}

    @property
    def circuit(self) -> dict[str, CircuitState]:
        return {route.label: route.breaker.state for route in self.all}

    def choose(self) -> Route | None:
        for route in self.all:
            if route.breaker.available():
                return route
        return None

    def log_paused(self, now: datetime) -> None:
        """Say why dispatch is paused, once a minute rather than at every tick."""
        last = self._paused_logged_at
        if last is not None and now - last < PAUSED_LOG_INTERVAL:
            return
        self._paused_logged_at = now
        for route in self.all:
            logger.error(
                "dispatch paused: gateway %s circuit open (%s); messages stay queued; "
                "next probe at %s",
                route.label,
                route.breaker.last_error,
                route.breaker.retry_at,
            )

    def close(self) -> None:
        for route in self.all:
            route.pool.shutdown(wait=True)
