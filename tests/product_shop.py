"""A shop whose orders carry line items, written through the one write path (the loader),
for the product rules, audiences and template variables. Times are UTC."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.customers.loader import load_customers, load_orders
from campaigner.db.models import Customer, Message, Order
from campaigner.planner import PlanReport, plan
from campaigner.rules.models import Rule

T0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


def day(n: float, hour: float = 0) -> datetime:
    """`n` days (and hours) after T0."""
    return T0 + timedelta(days=n, hours=hour)


def item(
    name: str,
    *,
    product_id: str | None = None,
    sku: str | None = None,
    categories: Sequence[str] = (),
    quantity: int = 1,
    line_total: str = "10",
) -> dict[str, Any]:
    return {
        "name": name,
        "product_id": product_id,
        "sku": sku,
        "categories": list(categories),
        "quantity": quantity,
        "line_total": line_total,
    }


TEA = item("Masala chai", product_id="57", sku="TEA-57", categories=["Tea", "Drinks, hot"])
POT = item("Teapot", product_id="90", sku="POT-90", categories=["Teaware"])
BEANS = item("Coffee beans", product_id="70", sku="BEAN-70", categories=["Coffee"])


def make_rule(**fields: Any) -> Rule:
    fields.setdefault("template", "x")
    fields.setdefault("name", fields["trigger"])
    return TypeAdapter(Rule).validate_python(fields)


class ProductShop:
    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings
        self._orders = 0
        self._customers = 0

    def customer(self, external_id: str, *, consent: bool = True, phone: str = "") -> int:
        self._customers += 1
        number = phone or f"+98912{self._customers:07d}"
        with self.sessions.begin() as session:
            result = load_customers(
                session,
                [
                    {
                        "external_id": external_id,
                        "first_name": external_id.capitalize(),
                        "phone": number,
                        "marketing_consent": "yes" if consent else "no",
                        "timezone": "UTC",
                    }
                ],
                self.settings.customers,
                now=T0,
            )
            assert not result.errors, result.errors
            return session.scalars(
                select(Customer.id).where(Customer.external_id == external_id)
            ).one()

    def order(
        self,
        customer: str,
        paid_at: datetime,
        *items: dict[str, Any],
        status: str = "paid",
        external_id: str = "",
        refunded: str = "0",
    ) -> str:
        self._orders += 1
        order_id = external_id or f"o{self._orders}"
        with self.sessions.begin() as session:
            result = load_orders(
                session,
                [
                    {
                        "external_id": order_id,
                        "customer_id": customer,
                        "total": "100",
                        "status": status,
                        "refunded": refunded,
                        "paid_at": paid_at.isoformat(),
                        "items": list(items),
                    }
                ],
                self.settings.customers,
                now=paid_at,
            )
            assert not result.errors, result.errors
        return order_id

    def plan(self, rules: list[Rule], when: datetime) -> PlanReport:
        with self.sessions.begin() as session:
            report = plan(session, rules, FixedClock(when), self.settings)
        assert not report.errors, report.errors
        return report

    def ledger(self) -> list[tuple[str, str, str, datetime]]:
        """(rule, customer external id, occurrence key, due_at) of every ledger row."""
        with self.sessions() as session:
            rows = session.execute(
                select(Message.rule, Customer.external_id, Message.occurrence_key, Message.due_at)
                .join(Customer, Customer.id == Message.customer_id)
                .order_by(Message.id)
            )
            return [tuple(row) for row in rows]  # type: ignore[misc]

    def external_key(self, order_external_id: str) -> str:
        """The ledger's occurrence key (the internal order id) of a shop order."""
        with self.sessions() as session:
            query = select(Order.id).where(Order.external_id == order_external_id)
            return str(session.scalars(query).one())
