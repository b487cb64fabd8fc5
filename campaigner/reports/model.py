"""What a report contains: plain dataclasses, so every output format reads the same numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

Z_95 = 1.96
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Money:
    """An amount with its currency. Amounts in different currencies are never added up."""

    amount: Decimal
    currency: str


@dataclass(frozen=True)
class Revenue:
    """Paid orders in one currency."""

    currency: str
    orders: int
    amount: Decimal
    buyers: int = 0  # distinct customers (shop-wide figures only)

    @property
    def average_order_value(self) -> Decimal | None:
        return (self.amount / self.orders).quantize(CENT) if self.orders else None

    @property
    def average_clv(self) -> Decimal | None:
        """Lifetime value per customer who bought in this currency."""
        return (self.amount / self.buyers).quantize(CENT) if self.buyers else None


@dataclass(frozen=True)
class Converted:
    """Revenue in several currencies added up at `[reports] exchange_rates`: an estimate,
    always shown labelled as converted. No total when a currency has no rate."""

    currency: str
    total: Revenue | None
    missing_rates: tuple[str, ...] = ()


@dataclass(frozen=True)
class Uplift:
    """Messaged versus held-out conversion, or the reason there is no honest number yet."""

    messaged: int
    messaged_conversions: int
    held_out: int
    held_out_conversions: int
    min_group_size: int

    @property
    def enough_data(self) -> bool:
        return min(self.messaged, self.held_out) >= self.min_group_size

    @property
    def messaged_rate(self) -> float | None:
        return self.messaged_conversions / self.messaged if self.messaged else None

    @property
    def held_out_rate(self) -> float | None:
        return self.held_out_conversions / self.held_out if self.held_out else None

    @property
    def difference(self) -> float | None:
        """Conversion rate of the messaged group minus that of the held-out group."""
        if not self.enough_data or self.messaged_rate is None or self.held_out_rate is None:
            return None
        return self.messaged_rate - self.held_out_rate

    @property
    def confidence_interval(self) -> tuple[float, float] | None:
        """95% Wald interval for a difference of two proportions."""
        diff = self.difference
        if diff is None or self.messaged_rate is None or self.held_out_rate is None:
            return None
        p1, p0 = self.messaged_rate, self.held_out_rate
        error = math.sqrt(p1 * (1 - p1) / self.messaged + p0 * (1 - p0) / self.held_out)
        return (diff - Z_95 * error, diff + Z_95 * error)

    @property
    def verdict(self) -> str:
        if not self.enough_data:
            return f"not enough data (need {self.min_group_size} in each group)"
        interval = self.confidence_interval
        assert interval is not None
        low, high = interval
        if low > 0:
            return "the messages help"
        if high < 0:
            return "the messages hurt"
        return "no clear difference"


# The segment of ledger rows planned before the segment at planning was kept.
UNRECORDED = "unrecorded"


@dataclass(frozen=True)
class SegmentResult:
    """A rule's sent messages and conversions among the customers who were in one value
    segment when their message was planned."""

    segment: str
    sent: int
    conversions: int

    @property
    def conversion_rate(self) -> float | None:
        return self.conversions / self.sent if self.sent else None


@dataclass
class RuleReport:
    rule: str
    planned: int = 0
    queued: int = 0
    held_out: int = 0
    sending: int = 0
    sent: int = 0  # accepted by the gateway: sent, delivered or undelivered
    delivered: int = 0
    undelivered: int = 0
    failed: int = 0
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    expired: int = 0
    cancelled: int = 0  # withdrawn announcements
    unknown: int = 0
    segments: int = 0
    cost: Money = Money(Decimal(0), "")  # estimated, in the SMS pricing currency
    conversions: int = 0
    revenue: list[Revenue] = field(default_factory=list)  # attributed, one per currency
    converted_revenue: Converted | None = None
    coupons_redeemed: int = 0
    uplift: Uplift | None = None
    by_segment: list[SegmentResult] = field(default_factory=list)  # in map order
    # cross_sell: messaged customers who then bought the suggestion; replenish: who bought
    # the product again (in the attribution window). None for other rules.
    bought_it: int | None = None

    @property
    def delivery_rate(self) -> float | None:
        return self.delivered / self.sent if self.sent else None

    @property
    def conversion_rate(self) -> float | None:
        return self.conversions / self.sent if self.sent else None


@dataclass(frozen=True)
class DailySends:
    day: date
    rule: str
    sent: int


@dataclass(frozen=True)
class Referrals:
    referrer_id: int
    referrer_name: str
    referred: int


@dataclass
class BusinessKpis:
    """The shop's health at the end of the period, whatever the messages did."""

    buyers: int = 0
    active_customers: int = 0
    churned_customers: int = 0
    repeat_buyers: int = 0
    revenue: list[Revenue] = field(default_factory=list)  # paid up to the end, per currency
    converted_revenue: Converted | None = None
    win_back_recipients: int = 0
    win_back_recovered: int = 0
    referrals: list[Referrals] = field(default_factory=list)

    @property
    def churn_rate(self) -> float | None:
        return self.churned_customers / self.buyers if self.buyers else None

    @property
    def repeat_purchase_rate(self) -> float | None:
        return self.repeat_buyers / self.buyers if self.buyers else None

    @property
    def win_back_recovery_rate(self) -> float | None:
        if not self.win_back_recipients:
            return None
        return self.win_back_recovered / self.win_back_recipients


@dataclass
class NpsSummary:
    responses: int = 0
    promoters: int = 0
    passives: int = 0
    detractors: int = 0

    @property
    def score(self) -> float | None:
        """Promoters minus detractors, as a percentage of responses (-100 to 100)."""
        if not self.responses:
            return None
        return 100 * (self.promoters - self.detractors) / self.responses


@dataclass(frozen=True)
class NpsWeek:
    week: date  # the Monday that starts it
    summary: NpsSummary


@dataclass
class Report:
    generated_at: datetime
    since: date | None
    until: date | None
    rule: str | None
    churn_days: int
    rules: list[RuleReport] = field(default_factory=list)
    daily_sends: list[DailySends] = field(default_factory=list)
    kpis: BusinessKpis = field(default_factory=BusinessKpis)
    nps: NpsSummary = field(default_factory=NpsSummary)
    nps_weeks: list[NpsWeek] = field(default_factory=list)
    segment_sizes: dict[str, int] = field(default_factory=dict)  # customers now, map order

    @property
    def is_empty(self) -> bool:
        return not self.rules and not self.kpis.buyers and not self.nps.responses
