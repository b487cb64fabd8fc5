"""Referral codes: one stable code per customer, and who brought whom.

The code is created the first time a message needs it and stored on the customer, so every
later message (and the shop's checkout) sees the same one.

A dispatch batch issues its codes as a batch (`ReferralBatch`), as it does coupons: one code
per customer without one, all stored by one UPDATE with the batch's texts, instead of a
savepoint, an UPDATE and a re-read per customer. A code taken meanwhile, or a customer given
a code by another dispatcher meanwhile, fails the whole batch: it goes back to the queue
unsent, and the next pass renders with the code that is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from campaigner.db.models import Customer, Order
from campaigner.messages.codes import random_code

if TYPE_CHECKING:
    from campaigner.config import Settings

REFERRAL_CODE_LENGTH = 8
MAX_TRIES = 10
BATCH = "campaigner.referrals.batch"
CHECK_CHUNK = 500


def referral_code_for(session: Session, customer: Customer) -> str:
    """The customer's referral code, created and stored on first use (within a
    `ReferralBatch`, stored when the batch is flushed)."""
    if customer.referral_code:
        return customer.referral_code
    batch = session.info.get(BATCH)
    if isinstance(batch, ReferralBatch):
        return batch.code_for(customer)
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


class ReferralCodeTaken(Exception):
    """A code of the batch was taken, or one of its customers got a code, meanwhile: the
    batch is sent again."""


class ReferralBatch:
    """New referral codes for the customers of the messages rendered in one session.

    Start it with `ReferralBatch.begin(session)` before rendering a batch and `flush` it
    before the rendered texts are written: a text is never stored (or sent) without its code
    stored on its customer.
    """

    def __init__(self, generate: Callable[[int], str] | None = None) -> None:
        self.generate = generate  # None: `random_code`, as the module has it at each call
        self.pending: dict[int, str] = {}  # customer id -> the code its texts show

    @classmethod
    def begin(cls, session: Session, generate: Callable[[int], str] | None = None) -> ReferralBatch:
        batch = cls(generate)
        session.info[BATCH] = batch
        return batch

    def code_for(self, customer: Customer) -> str:
        """The code this customer's texts in the batch show: one per customer."""
        known = self.pending.get(customer.id)
        if known is not None:
            return known
        generate = self.generate or random_code
        taken = set(self.pending.values())
        code = generate(REFERRAL_CODE_LENGTH)
        for _ in range(MAX_TRIES):
            if code not in taken:
                break
            code = generate(REFERRAL_CODE_LENGTH)
        self.pending[customer.id] = code
        return code

    def flush(self, session: Session) -> int:
        """Store the new codes; ReferralCodeTaken unless every one is now its customer's."""
        session.info.pop(BATCH, None)
        if not self.pending:
            return 0
        customers = cast(Table, Customer.__table__)
        store = (
            update(customers)
            .where(customers.c.id == bindparam("customer"), customers.c.referral_code.is_(None))
            .values(referral_code=bindparam("code"))
        )
        rows = [{"customer": key, "code": code} for key, code in self.pending.items()]
        try:
            with session.begin_nested():
                session.execute(store, rows)
        except IntegrityError:
            raise ReferralCodeTaken(
                f"one of {len(rows)} new referral codes was taken meanwhile"
            ) from None
        ids = list(self.pending)
        for start in range(0, len(ids), CHECK_CHUNK):
            chunk = ids[start : start + CHECK_CHUNK]
            stored = session.execute(
                select(customers.c.id, customers.c.referral_code).where(customers.c.id.in_(chunk))
            )
            if any(code != self.pending[key] for key, code in stored):
                raise ReferralCodeTaken("a customer of the batch got a referral code meanwhile")
        return len(ids)


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
