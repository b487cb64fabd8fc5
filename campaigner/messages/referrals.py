"""Referral codes: one stable code per customer, and who brought whom.

The code is created the first time a message needs it and stored on the customer, so every
later message (and the shop's checkout) sees the same one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from campaigner.db.models import Customer, Order
from campaigner.messages.codes import random_code

if TYPE_CHECKING:
    from campaigner.config import Settings

REFERRAL_CODE_LENGTH = 8
MAX_TRIES = 10


def referral_code_for(session: Session, customer: Customer) -> str:
    """The customer's referral code, created and stored on first use."""
    if customer.referral_code:
        return customer.referral_code
    for _ in range(MAX_TRIES):
        code = random_code(REFERRAL_CODE_LENGTH)
        try:
            with session.begin_nested():
                # Only set when still empty: a concurrent sender may have just set one.
                session.execute(
                    update(Customer)
                    .where(Customer.id == customer.id, Customer.referral_code.is_(None))
                    .values(referral_code=code)
                    .execution_options(synchronize_session=False)
                )
        except IntegrityError:
            continue
        session.refresh(customer, ["referral_code"])
        if customer.referral_code:
            return customer.referral_code
    raise RuntimeError(f"could not find a free referral code in {MAX_TRIES} tries")


def referral_url(code: str, settings: Settings) -> str:
    return settings.messages.referral_url.replace("{code}", code)


def attribute_referrals(session: Session, order_ids: Iterable[int]) -> int:
    """Record who referred each new customer whose first paid order carries a referral code.

    Needs up-to-date order sequence numbers (`refresh_customer_stats`). An earlier
    attribution is never overwritten and nobody refers themselves. Returns how many were set.
    """
    ids = list(order_ids)
    if not ids:
        return 0
    referrer = aliased(Customer)
    rows = session.execute(
        select(Order.customer_id, referrer.id)
        .join(referrer, referrer.referral_code == Order.referral_code)
        .join(Customer, Customer.id == Order.customer_id)
        .where(
            Order.id.in_(ids),
            Order.sequence == 1,
            Customer.referred_by_id.is_(None),
            referrer.id != Order.customer_id,
        )
    ).all()
    for customer_id, referrer_id in rows:
        session.execute(
            update(Customer)
            .where(Customer.id == customer_id, Customer.referred_by_id.is_(None))
            .values(referred_by_id=referrer_id)
            .execution_options(synchronize_session=False)
        )
    return len(rows)
