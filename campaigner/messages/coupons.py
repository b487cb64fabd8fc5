"""Coupon codes: one per message, stored before the message is sent, redeemed by an order.

A dispatcher may render the same message twice (a retry after a timeout), so issuing is
idempotent per message: the second call returns the first coupon, never a second code.

A dispatch batch issues its coupons as a batch (`CouponBatch`): a savepoint, a flush and a
lookup per coupon were half the cost of sending. The batch looks up the coupons its
messages already have in one query and inserts the new ones together with the batch's
texts; a code taken meanwhile (about 1 in 10^6 per code with a million coupons issued)
fails the whole batch, which goes back to the queue unsent and gets fresh codes next pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from campaigner.db.models import Coupon, Customer, Message, Order
from campaigner.messages.codes import random_code
from campaigner.spreadsheets import SpreadsheetWriter

_COUPONS = cast(Table, Coupon.__table__)
MAX_TRIES = 10
BATCH = "campaigner.coupons.batch"
LOOKUP_CHUNK = 500
EXPORT_FIELDS = (
    "code",
    "customer_id",
    "phone",
    "rule",
    "percent",
    "amount",
    "currency",
    "expires_at",
    "created_at",
    "redeemed_order_id",
    "redeemed_at",
)


def new_coupon_code(prefix: str = "") -> str:
    """E.g. THX-7K3M-9QPX: 8 random characters (about 40 bits), grouped for reading aloud."""
    body = random_code(8)
    code = f"{body[:4]}-{body[4:]}"
    prefix = "".join(char for char in prefix.upper() if char.isalnum())
    return f"{prefix}-{code}" if prefix else code


def issue_coupon(
    session: Session,
    *,
    customer_id: int,
    rule: str,
    message_id: int | None,
    percent: float | Decimal | None,
    amount: float | Decimal | None,
    valid_days: int,
    prefix: str,
    now: datetime,
    generate: Callable[[str], str] = new_coupon_code,
) -> Coupon | IssuedCoupon:
    """The coupon for this message: the stored one if it exists, else a new unique code."""
    batch = session.info.get(BATCH)
    if isinstance(batch, CouponBatch) and message_id is not None:
        return batch.issue(
            session,
            customer_id=customer_id,
            rule=rule,
            message_id=message_id,
            percent=percent,
            amount=amount,
            valid_days=valid_days,
            prefix=prefix,
            now=now,
        )
    if message_id is not None:
        existing = _for_message(session, message_id)
        if existing is not None:
            return existing
    for _ in range(MAX_TRIES):
        coupon = Coupon(
            code=generate(prefix),
            customer_id=customer_id,
            rule=rule,
            message_id=message_id,
            percent=None if percent is None else Decimal(str(percent)),
            amount=None if amount is None else Decimal(str(amount)),
            expires_at=now + timedelta(days=valid_days),
            created_at=now,
        )
        try:
            with session.begin_nested():
                session.add(coupon)
                session.flush()
        except IntegrityError:
            # Either the code was taken (try another) or a concurrent render just issued
            # this message's coupon (use it).
            if message_id is not None:
                existing = _for_message(session, message_id)
                if existing is not None:
                    return existing
            continue
        return coupon
    raise RuntimeError(f"could not find a free coupon code in {MAX_TRIES} tries")


class CouponCodeTaken(Exception):
    """A code of the batch was taken by another dispatcher meanwhile: send the batch again."""


@dataclass(frozen=True, slots=True)
class IssuedCoupon:
    """A coupon of a batch, not stored yet: plain data, where an ORM object cost as much to
    make as the rest of issuing it."""

    code: str
    customer_id: int
    rule: str
    message_id: int
    percent: Decimal | None
    amount: Decimal | None
    expires_at: datetime
    created_at: datetime


class CouponBatch:
    """Coupons for the messages rendered in one session, stored with one INSERT at `flush`
    (the coupons handed out are plain data, not in the session: they serve the templates).

    Start it with `CouponBatch.begin(session)` before rendering a batch and `flush` it before
    the rendered texts are written: a text is never stored (or sent) without its coupon.
    """

    def __init__(self, generate: Callable[[str], str] = new_coupon_code) -> None:
        self.generate = generate
        self.existing: dict[int, Coupon | IssuedCoupon] = {}
        self.looked_up: set[int] | None = None  # messages whose stored coupon was looked for
        self.pending: list[IssuedCoupon] = []
        self.codes: set[str] = set()

    @classmethod
    def begin(
        cls, session: Session, generate: Callable[[str], str] = new_coupon_code
    ) -> CouponBatch:
        batch = cls(generate)
        session.info[BATCH] = batch
        return batch

    def issue(
        self,
        session: Session,
        *,
        customer_id: int,
        rule: str,
        message_id: int,
        percent: float | Decimal | None,
        amount: float | Decimal | None,
        valid_days: int,
        prefix: str,
        now: datetime,
    ) -> Coupon | IssuedCoupon:
        if self.looked_up is None:
            self.looked_up = self._load_existing(session)
        found = self.existing.get(message_id)
        if found is None and message_id not in self.looked_up:
            found = _for_message(session, message_id)
        if found is not None:
            return found
        code = self.generate(prefix)
        for _ in range(MAX_TRIES):
            if code not in self.codes:
                break
            code = self.generate(prefix)
        coupon = IssuedCoupon(
            code=code,
            customer_id=customer_id,
            rule=rule,
            message_id=message_id,
            percent=None if percent is None else Decimal(str(percent)),
            amount=None if amount is None else Decimal(str(amount)),
            expires_at=now + timedelta(days=valid_days),
            created_at=now,
        )
        self.codes.add(code)
        self.pending.append(coupon)
        self.existing[message_id] = coupon
        return coupon

    def flush(self, session: Session) -> int:
        """Insert the new coupons; CouponCodeTaken if a code (or a message) was taken."""
        session.info.pop(BATCH, None)
        if not self.pending:
            return 0
        rows = [
            {
                "code": coupon.code,
                "customer_id": coupon.customer_id,
                "rule": coupon.rule,
                "message_id": coupon.message_id,
                "percent": coupon.percent,
                "amount": coupon.amount,
                "expires_at": coupon.expires_at,
                "created_at": coupon.created_at,
            }
            for coupon in self.pending
        ]
        try:
            with session.begin_nested():
                # The table, not the mapped class: a plain executemany, without the ORM's
                # bulk insert bookkeeping.
                session.execute(insert(_COUPONS), rows)
        except IntegrityError:
            raise CouponCodeTaken(
                f"one of {len(self.pending)} new coupon codes was taken meanwhile"
            ) from None
        return len(self.pending)

    def _load_existing(self, session: Session) -> set[int]:
        """The coupons of every message loaded in the session (the batch), in one query per
        LOOKUP_CHUNK messages; returns the ids looked up."""
        ids = sorted(
            state.dict["id"]
            for state in session.identity_map.all_states()
            if state.class_ is Message and "id" in state.dict
        )
        for start in range(0, len(ids), LOOKUP_CHUNK):
            chunk = ids[start : start + LOOKUP_CHUNK]
            for coupon in session.scalars(select(Coupon).where(Coupon.message_id.in_(chunk))):
                if coupon.message_id is not None:
                    self.existing[coupon.message_id] = coupon
        return set(ids)


def redeem_coupons(session: Session, order_ids: Iterable[int]) -> int:
    """Mark coupons used by these paid orders as redeemed; the first redeeming order counts.

    An order may carry several codes (`A,B`); most are the shop's own, not Campaigner's, so
    the codes are looked up once and only those that are open coupons are updated.
    """
    ids = list(order_ids)
    if not ids:
        return 0
    orders = session.execute(
        select(Order.id, Order.coupon_code, Order.paid_at)
        .where(
            Order.id.in_(ids),
            Order.coupon_code.is_not(None),
            Order.status == "paid",
            Order.paid_at.is_not(None),
        )
        .order_by(Order.paid_at, Order.id)
    ).all()
    codes = {code for _, text, _ in orders for code in (text or "").split(",") if code}
    if not codes:
        return 0
    open_codes = set(
        session.scalars(
            select(Coupon.code).where(Coupon.code.in_(codes), Coupon.redeemed_order_id.is_(None))
        )
    )
    redeemed = 0
    for order_id, text, paid_at in orders:
        for code in (text or "").split(","):
            if code not in open_codes:
                continue
            result = session.execute(
                update(Coupon)
                .where(Coupon.code == code, Coupon.redeemed_order_id.is_(None))
                .values(redeemed_order_id=order_id, redeemed_at=paid_at)
                .execution_options(synchronize_session=False)
            )
            redeemed += cast(CursorResult[Any], result).rowcount
            open_codes.discard(code)
    return redeemed


def export_coupons(
    session: Session, since: datetime | None, path: Path, currency: str = "IRT"
) -> int:
    """Write coupons created since `since` (all when None) as CSV for the shop; returns count.

    A fixed-amount coupon is in the shop's currency (`customers.currency`), written beside it.
    """
    redeemed_order = aliased(Order)
    query = (
        select(Coupon, Customer.external_id, Customer.phone, redeemed_order.external_id)
        .join(Customer, Customer.id == Coupon.customer_id)
        .outerjoin(redeemed_order, redeemed_order.id == Coupon.redeemed_order_id)
        .order_by(Coupon.created_at, Coupon.id)
    )
    if since is not None:
        query = query.where(Coupon.created_at >= since)
    count = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = SpreadsheetWriter(handle)
        writer.writerow(EXPORT_FIELDS)
        for coupon, customer, phone, order in session.execute(query):
            writer.writerow(
                [
                    coupon.code,
                    customer,
                    phone,
                    coupon.rule,
                    _text(coupon.percent),
                    _text(coupon.amount),
                    currency if coupon.amount is not None else None,
                    coupon.expires_at.isoformat(timespec="seconds"),
                    coupon.created_at.isoformat(timespec="seconds"),
                    order,
                    coupon.redeemed_at.isoformat(timespec="seconds")
                    if coupon.redeemed_at
                    else None,
                ]
            )
            count += 1
    return count


def _for_message(session: Session, message_id: int) -> Coupon | None:
    return session.scalars(select(Coupon).where(Coupon.message_id == message_id)).first()


def _text(value: Decimal | None) -> str:
    if value is None:
        return ""
    return str(value.normalize()) if value != value.to_integral_value() else str(int(value))
