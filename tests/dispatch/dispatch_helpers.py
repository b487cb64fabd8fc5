"""Builders shared by the dispatcher tests: customers, ledger rows, a fake renderer, gateways."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from itertools import count
from typing import Any, ClassVar

from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.config import GatewaySettings, Settings
from campaigner.db.models import Customer, Message
from campaigner.dispatch import Dispatcher, Rendered, RenderError
from campaigner.gateways.base import DeliveryReport, Gateway, OutgoingMessage, SendResult
from campaigner.policy import RulePolicy

_numbers = count(1)


def add_customer(
    sessions: sessionmaker[Session],
    *,
    phone: str | None = None,
    timezone: str = "Asia/Tehran",
    consent: bool = True,
    first_name: str = "Sara",
) -> int:
    n = next(_numbers)
    with sessions.begin() as session:
        customer = Customer(
            external_id=f"c{n}",
            first_name=first_name,
            phone=phone or f"+98912{n:07d}",
            timezone=timezone,
            marketing_consent=consent,
        )
        session.add(customer)
        session.flush()
        return customer.id


def queue(
    sessions: sessionmaker[Session],
    customer_id: int,
    due: datetime,
    *,
    rule: str = "thank_you",
    key: str | None = None,
    priority: int = 0,
    lateness: timedelta = timedelta(days=3),
) -> int:
    with sessions.begin() as session:
        customer = session.get_one(Customer, customer_id)
        message = Message(
            rule=rule,
            customer_id=customer_id,
            occurrence_key=key or f"k{next(_numbers)}",
            status="queued",
            priority=priority,
            phone=customer.phone,
            due_at=due,
            scheduled_for=due,
            expires_at=due + lateness,
        )
        session.add(message)
        session.flush()
        return message.id


def row(sessions: sessionmaker[Session], message_id: int) -> Message:
    with sessions() as session:
        return session.get_one(Message, message_id)


class FakeRenderer:
    """Greets by first name; a rule named "too_long" cannot be rendered."""

    def render(self, session: Session, message: Message) -> Rendered:
        if message.rule == "too_long":
            raise RenderError("too long")
        customer = session.get_one(Customer, message.customer_id)
        return Rendered(f"Hi {customer.first_name}, from {message.rule}", "gsm7", 1)


TRANSACTIONAL = {"order_shipped"}


def policies(rule: str) -> RulePolicy:
    return RulePolicy(transactional=rule in TRANSACTIONAL)


Behaviour = Callable[[Sequence[OutgoingMessage]], list[SendResult]]


class ScriptedGateway(Gateway):
    """Plays a script of behaviours, one per request, then accepts everything."""

    name: ClassVar[str] = "scripted"
    max_batch: ClassVar[int] = 50
    supports_status: ClassVar[bool] = True

    def __init__(
        self,
        *script: Behaviour,
        max_batch: int = 50,
        statuses: dict[int, str] | None = None,
        supports_status: bool = True,
    ) -> None:
        super().__init__(GatewaySettings(name="scripted"))
        self.script = list(script)
        self.max_batch = max_batch
        self.supports_status = supports_status
        self.requests: list[list[OutgoingMessage]] = []
        self.statuses = statuses or {}

    @property
    def sent(self) -> list[OutgoingMessage]:
        return [m for batch in self.requests for m in batch]

    def send(self, batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        self.requests.append(list(batch))
        if self.script:
            return self.script.pop(0)(batch)
        return [SendResult.accepted(m.id, f"p-{m.id}") for m in batch]

    def status(self, messages: Sequence[OutgoingMessage]) -> list[DeliveryReport]:
        return [
            DeliveryReport(status=self.statuses[m.id], message_id=m.id)
            for m in messages
            if m.id in self.statuses
        ]


def with_sending(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update={"sending": settings.sending.model_copy(update=changes)})


def make_dispatcher(
    sessions: sessionmaker[Session],
    gateway: Gateway,
    clock: FixedClock,
    settings: Settings,
    **options: Any,
) -> Dispatcher:
    options.setdefault("renderer", FakeRenderer())
    options.setdefault("policies", policies)
    return Dispatcher(sessions, gateway, clock, settings, **options)
