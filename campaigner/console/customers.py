"""Finding a customer and changing their opt-out and consent from the console; every change
is written through the same functions as the CLI and recorded in the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from campaigner.console.audit import record
from campaigner.customers.phones import InvalidPhone, normalize_phone
from campaigner.db.models import Customer, Message, OptOut, Order
from campaigner.dispatch.overview import message_history
from campaigner.errors import CampaignerError
from campaigner.optouts import add_opt_outs, remove_opt_out

MAX_RESULTS = 50


@dataclass
class Profile:
    customer: Customer
    orders: Sequence[Order]
    messages: Sequence[Message]
    opted_out: OptOut | None


MAX_ID = 2**31 - 1  # customers.id is an INTEGER column


def search(session: Session, query: str, region: str) -> Sequence[Customer]:
    """By phone in any written form, exact external id, or a part of the name."""
    query = query.strip()[:100]
    if not query:
        return []
    conditions = [Customer.external_id == query]
    with suppress(InvalidPhone):
        conditions.append(Customer.phone == normalize_phone(query, region))
    pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    conditions += [
        Customer.first_name.ilike(pattern, escape="\\"),
        Customer.last_name.ilike(pattern, escape="\\"),
    ]
    return session.scalars(
        select(Customer).where(or_(*conditions)).order_by(Customer.id).limit(MAX_RESULTS)
    ).all()


def profile(session: Session, customer_id: int) -> Profile:
    customer = _customer(session, customer_id)
    orders = session.scalars(
        select(Order).where(Order.customer_id == customer_id).order_by(Order.id.desc()).limit(50)
    ).all()
    opted_out = session.get(OptOut, customer.phone) if customer.phone else None
    history = list(message_history(session, customer_id=customer_id))[-100:]
    return Profile(customer, orders, list(reversed(history)), opted_out)


def set_opt_out(
    session: Session, customer_id: int, opted_out: bool, *, user: str, reason: str, now: datetime
) -> None:
    customer = _with_phone(session, customer_id)
    assert customer.phone is not None
    if opted_out:
        add_opt_outs(session, [customer.phone], now, source=f"console:{user}", reason=reason)
    else:
        remove_opt_out(session, customer.phone)
    action = "opt_out" if opted_out else "opt_in"
    record(session, now, user, action, f"customer {customer.external_id}", reason)


def set_consent(
    session: Session, customer_id: int, consent: bool, *, user: str, reason: str, now: datetime
) -> None:
    customer = _customer(session, customer_id)
    customer.marketing_consent = consent
    action = "consent_given" if consent else "consent_withdrawn"
    record(session, now, user, action, f"customer {customer.external_id}", reason)


def _with_phone(session: Session, customer_id: int) -> Customer:
    customer = _customer(session, customer_id)
    if not customer.phone:
        raise CampaignerError(f"customer {customer.external_id} has no phone number")
    return customer


def _customer(session: Session, customer_id: int) -> Customer:
    """The customer, or a named refusal; ids past a 32-bit key are nobody, not a database error."""
    customer = session.get(Customer, customer_id) if 0 < customer_id <= MAX_ID else None
    if customer is None:
        raise CampaignerError(f"no customer #{customer_id}")
    return customer
