"""What each value segment is worth: its size, and per currency its share of revenue, average
order value and average customer lifetime value (CLV), for `campaigner segments`.

Revenue is every paid order ever, net of refunds, in the order's own currency; amounts in
different currencies are never added up, so a segment has one line per currency it bought in.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from campaigner.db.models import Customer, Order
from campaigner.segments.membership import with_segment
from campaigner.segments.rfm_map import NO_SEGMENT, SEGMENTS

CENT = Decimal("0.01")
customers = cast(Table, Customer.__table__)
orders = cast(Table, Order.__table__)


@dataclass(frozen=True)
class CurrencyLine:
    currency: str
    buyers: int
    orders: int
    revenue: Decimal
    revenue_share: Decimal | None  # of all the shop's revenue in this currency, in percent

    @property
    def average_order_value(self) -> Decimal | None:
        return (self.revenue / self.orders).quantize(CENT) if self.orders else None

    @property
    def average_clv(self) -> Decimal | None:
        return (self.revenue / self.buyers).quantize(CENT) if self.buyers else None


@dataclass(frozen=True)
class SegmentLine:
    segment: str
    customers: int
    customer_share: Decimal | None  # of all customers, in percent
    currencies: tuple[CurrencyLine, ...]


def segment_summary(session: Session, main_currency: str) -> list[SegmentLine]:
    """One line per segment in map order (then "none"), empty segments included."""
    everyone, named = with_segment(customers, customers.c.id)
    sizes = {
        name: count
        for name, count in session.execute(
            select(named, func.count()).select_from(everyone).group_by(named)
        )
    }
    currency = func.coalesce(func.nullif(orders.c.currency, ""), main_currency)
    buyers, bought_in = with_segment(orders, orders.c.customer_id)
    money = session.execute(
        select(
            bought_in,
            currency.label("currency"),
            func.count(func.distinct(orders.c.customer_id)),
            func.count(),
            func.sum(orders.c.total - orders.c.refunded),
        )
        .select_from(buyers)
        .where(orders.c.status == "paid", orders.c.paid_at.is_not(None))
        .group_by(bought_in, currency)
    ).all()
    totals: dict[str, Decimal] = {}
    for _, code, _, _, revenue in money:
        totals[code] = totals.get(code, Decimal(0)) + Decimal(revenue or 0)
    everybody = sum(sizes.values())
    known = [*SEGMENTS, NO_SEGMENT]
    order = known + sorted(set(sizes) - set(known))
    lines = []
    for segment in order:
        per_currency = tuple(
            CurrencyLine(
                currency=code,
                buyers=buyers,
                orders=count,
                revenue=Decimal(revenue or 0).quantize(CENT),
                revenue_share=_percent(Decimal(revenue or 0), totals[code]),
            )
            for name, code, buyers, count, revenue in sorted(money, key=lambda row: row[1])
            if name == segment
        )
        size = sizes.get(segment, 0)
        lines.append(
            SegmentLine(segment, size, _percent(Decimal(size), Decimal(everybody)), per_currency)
        )
    return lines


def _percent(part: Decimal, whole: Decimal) -> Decimal | None:
    return (part * 100 / whole).quantize(Decimal("0.1")) if whole else None
