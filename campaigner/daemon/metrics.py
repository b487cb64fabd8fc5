"""Prometheus metrics. Ledger figures are read from the database at scrape time, so every
instance reports the same truth and nothing is lost on restart."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import Clock
from campaigner.db.models import Message, MessageStatus


class LedgerCollector(Collector):
    def __init__(self, sessions: sessionmaker[Session], clock: Clock) -> None:
        self.sessions = sessions
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_status = GaugeMetricFamily(
            "campaigner_messages", "Ledger rows by rule and status", labels=["rule", "status"]
        )
        depth = GaugeMetricFamily("campaigner_queue_depth", "Queued messages whose time has come")
        oldest = GaugeMetricFamily(
            "campaigner_oldest_queued_age_seconds", "Age of the oldest due queued message"
        )
        now = self.clock.now()
        with self.sessions() as session:
            rows = session.execute(
                select(Message.rule, Message.status, func.count()).group_by(
                    Message.rule, Message.status
                )
            ).all()
            due = session.execute(
                select(func.count(), func.min(Message.scheduled_for)).where(
                    Message.status == MessageStatus.QUEUED, Message.scheduled_for <= now
                )
            ).one()
        for rule, status, count in rows:
            by_status.add_metric([rule, status], count)
        depth.add_metric([], due[0])
        oldest_due = due[1]
        age = (now - oldest_due).total_seconds() if oldest_due is not None else 0.0
        oldest.add_metric([], max(age, 0.0))
        yield by_status
        yield depth
        yield oldest


class Metrics:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock) -> None:
        self.registry = CollectorRegistry()
        self.planning_seconds = Histogram(
            "campaigner_planning_seconds", "Duration of planning passes", registry=self.registry
        )
        self.dispatch_seconds = Histogram(
            "campaigner_dispatch_seconds", "Duration of dispatch passes", registry=self.registry
        )
        self.planned = Counter(
            "campaigner_planned_total",
            "Ledger rows created",
            ["rule", "status"],
            registry=self.registry,
        )
        self.dispatched = Counter(
            "campaigner_dispatched_total", "Dispatch outcomes", ["outcome"], registry=self.registry
        )
        self.gateway_errors = Counter(
            "campaigner_gateway_errors_total",
            "Gateway errors by class",
            ["gateway", "kind"],
            registry=self.registry,
        )
        self.circuit_open = Gauge(
            "campaigner_circuit_open",
            "1 while a gateway's circuit breaker is open",
            ["gateway"],
            registry=self.registry,
        )
        self.registry.register(LedgerCollector(sessions, clock))

    def render(self) -> bytes:
        return generate_latest(self.registry)
