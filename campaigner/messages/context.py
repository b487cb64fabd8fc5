"""What a template can see: plain, read-only data about the customer, order, shop and rule.

Templates never get ORM objects (a template must not be able to lazy-load or change the
database); they get frozen views, with every time already in the customer's own time zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from campaigner.config import Settings
from campaigner.customers.categories import names as category_names
from campaigner.db.models import Customer, Order
from campaigner.messages.names import clean_first_name, first_name_or_fallback, plain_words
from campaigner.messages.referrals import referral_code_for, referral_url
from campaigner.timezones import zone_or

COMMON_VARIABLES = frozenset(
    {
        "customer",
        "first_name",
        "shop",
        "rule",
        "coupon",
        "referral_code",
        "referral_url",
        "today",
        "now",
    }
)
# A customer's referral code is created the first time a text shows one of these.
REFERRAL_VARIABLES = frozenset({"referral_code", "referral_url"})
# Triggers about one order (post_purchase, referral_request, nps_survey, cross_sell,
# replenish) also get `order`.
TRIGGER_VARIABLES: dict[str, frozenset[str]] = {
    "post_purchase": COMMON_VARIABLES | {"order"},
    "birthday": COMMON_VARIABLES,
    "win_back": COMMON_VARIABLES,
    "referral_request": COMMON_VARIABLES | {"order"},
    "nps_survey": COMMON_VARIABLES | {"order"},
    "segment_change": COMMON_VARIABLES,
    "occasion": COMMON_VARIABLES | {"occasion"},
    "personal_date": COMMON_VARIABLES | {"occasion", "years"},
    "cross_sell": COMMON_VARIABLES | {"order", "suggestion"},
    "replenish": COMMON_VARIABLES | {"order", "product"},
    "announcement": COMMON_VARIABLES,
    "draw_winner": COMMON_VARIABLES,
}

Number = int | Decimal


@dataclass(frozen=True)
class CustomerView:
    first_name: str
    last_name: str
    full_name: str
    locale: str
    tags: tuple[str, ...]
    orders_count: int
    total_spent: Number
    first_order_at: datetime | None
    last_order_at: datetime | None
    segment: str = "none"  # the value segment, e.g. "loyal" (README "Segments")
    favourite_category: str | None = None


@dataclass(frozen=True)
class ItemView:
    name: str
    quantity: int
    categories: tuple[str, ...]
    sku: str | None
    product_id: str | None
    line_total: Number

    @property
    def category(self) -> str:
        """The first category as stored (sorted by character code), or ""."""
        return self.categories[0] if self.categories else ""


@dataclass(frozen=True)
class OrderView:
    id: str
    total: Number
    currency: str
    paid_at: datetime | None
    items_count: int | None
    items: tuple[ItemView, ...] = ()


@dataclass(frozen=True)
class ShopView:
    name: str
    url: str
    phone: str


@dataclass(frozen=True)
class RuleView:
    name: str


@dataclass(frozen=True)
class OccasionView:
    """The day a message celebrates: Nowruz this year, the customer's anniversary this year."""

    name: str
    date: date


class CouponFacts(Protocol):
    """A coupon as the template shows it: stored (`Coupon`) or just issued by a batch."""

    @property
    def code(self) -> str: ...
    @property
    def percent(self) -> Decimal | None: ...
    @property
    def amount(self) -> Decimal | None: ...
    @property
    def expires_at(self) -> datetime: ...


@dataclass(frozen=True)
class CouponView:
    code: str
    percent: Number | None
    amount: Number | None
    expires_at: datetime


# What templates see besides plain values: read through the sandbox without its checks.
VIEWS: tuple[type, ...] = (
    CustomerView,
    ItemView,
    OrderView,
    ShopView,
    RuleView,
    OccasionView,
    CouponView,
)


def build_context(
    session: Session,
    *,
    customer: Customer,
    trigger: str,
    rule_name: str,
    order: Order | None,
    coupon: CouponFacts | None,
    settings: Settings,
    now: datetime,
    referral: bool = True,
    dated: Mapping[str, Any] | None = None,
    favourite_category: str | None = None,
    rule_variables: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The template variables for one message; a referral code is created on first use.

    Without `referral` (the template shows no referral code) the context has none, so a
    customer gets a code only once a message actually offers it. `dated` holds what an
    occasion or personal date adds (`occasion`, `years`: see `messages.dated`);
    `rule_variables` are the trigger's own (`suggestion`, `product`), see `rule_variables`.
    """
    zone = zone_or(customer.timezone, settings.customers.timezone)
    locale = customer.locale or settings.customers.locale
    first_name = clean_first_name(customer.first_name)
    last_words = plain_words(customer.last_name)
    context: dict[str, Any] = {
        "customer": CustomerView(
            first_name=first_name,
            last_name=" ".join(last_words),
            full_name=" ".join([*first_name.split(), *last_words]),
            locale=locale,
            tags=tuple(customer.tag_list),
            orders_count=customer.orders_count or 0,
            total_spent=plain_number(customer.total_spent or Decimal(0)),
            first_order_at=_local(customer.first_order_at, zone),
            last_order_at=_local(customer.last_order_at, zone),
            segment=customer.segment or "none",
            favourite_category=_plain(favourite_category) or None,
        ),
        "first_name": first_name_or_fallback(
            customer.first_name, locale, settings.messages.fallback_name
        ),
        "shop": _shop(settings),
        "rule": RuleView(name=rule_name),
        "today": now.astimezone(zone).date(),
        "now": now.astimezone(zone),
    }
    if referral:
        code = referral_code_for(session, customer)
        context["referral_code"] = code
        context["referral_url"] = referral_url(code, settings)
    if order is not None and "order" in TRIGGER_VARIABLES.get(trigger, frozenset()):
        context["order"] = OrderView(
            id=order.external_id,
            total=plain_number(order.total),
            currency=order.currency or settings.customers.currency,
            paid_at=_local(order.paid_at, zone),
            items_count=order.items_count,
            items=tuple(
                ItemView(
                    name=_plain(item.name),
                    quantity=item.quantity,
                    categories=tuple(map(_plain, category_names(item.categories))),
                    sku=_plain(item.sku) or None,
                    product_id=_plain(item.product_id) or None,
                    line_total=plain_number(item.line_total),
                )
                for item in order.items
            ),
        )
    context.update(dated or {})
    if coupon is not None:
        context["coupon"] = CouponView(
            code=coupon.code,
            percent=None if coupon.percent is None else plain_number(coupon.percent),
            amount=None if coupon.amount is None else plain_number(coupon.amount),
            expires_at=coupon.expires_at.astimezone(zone),
        )
    allowed = TRIGGER_VARIABLES.get(trigger, frozenset())
    context.update({k: v for k, v in (rule_variables or {}).items() if k in allowed})
    return context


class ProductRule(Protocol):
    """A rule about products: cross_sell names its suggestion, replenish its products."""

    @property
    def trigger(self) -> str: ...


def rule_variables(rule: ProductRule, order: Order | None) -> dict[str, str]:
    """The trigger's own variables: `suggestion` for cross_sell (the rule's text), `product`
    for replenish (the name of the matching line of the last purchase)."""
    suggestion = getattr(rule, "suggestion_text", None)
    if rule.trigger == "cross_sell" and isinstance(suggestion, str):
        return {"suggestion": suggestion}
    bought = getattr(rule, "bought", None)
    if rule.trigger == "replenish" and bought is not None and order is not None:
        names = [
            item.name
            for item in order.items
            if bought.matches(item.product_id, item.sku, category_names(item.categories))
        ]
        return {"product": _plain(names[0]) if names else ""}
    return {}


def _plain(text: str | None) -> str:
    """Shop text as an SMS may carry it (`names.plain_words`): no bidi override left open
    to reverse the rest of the message, whichever product field it came in."""
    return " ".join(plain_words(text))


def sample_context(
    trigger: str, locale: str, settings: Settings, *, with_coupon: bool = True
) -> dict[str, Any]:
    """Representative values for checking a template without a database."""
    zone = ZoneInfo(settings.customers.timezone)
    now = datetime(2026, 11, 23, 10, 30, tzinfo=UTC).astimezone(zone)
    persian = locale.startswith("fa")
    first = "محمد علی" if persian else "Mary Ann"
    last = "رضایی" if persian else "Smith"
    currency = "IRT" if persian else "CAD"
    total = 1_250_000 if persian else Decimal("49.90")
    context: dict[str, Any] = {
        "customer": CustomerView(
            first_name=first,
            last_name=last,
            full_name=f"{first} {last}",
            locale=locale,
            tags=("vip",),
            orders_count=3,
            total_spent=total * 3,
            first_order_at=now - timedelta(days=400),
            last_order_at=now - timedelta(days=2),
            segment="loyal",
            favourite_category="چای" if persian else "tea",
        ),
        "first_name": first,
        "shop": _shop(settings),
        "rule": RuleView(name=f"sample_{trigger}"),
        "referral_code": "K7M3Q9PX",
        "referral_url": referral_url("K7M3Q9PX", settings),
        "today": now.date(),
        "now": now,
    }
    if "order" in TRIGGER_VARIABLES.get(trigger, frozenset()):
        item = ItemView(
            name="چای ماسالا" if persian else "Masala chai",
            quantity=2,
            categories=("tea",),
            sku="TEA-01",
            product_id="57",
            line_total=total,
        )
        context["order"] = OrderView(
            id="1042", total=total, currency=currency, paid_at=now, items_count=2, items=(item,)
        )
    if trigger in ("occasion", "personal_date"):
        name = ("نوروز" if persian else "Nowruz") if trigger == "occasion" else "anniversary"
        context["occasion"] = OccasionView(name=name, date=date(2027, 3, 21))
    if trigger == "personal_date":
        context["years"] = 5
    if trigger == "cross_sell":
        context["suggestion"] = "دانه قهوه" if persian else "coffee beans"
    if trigger == "replenish":
        context["product"] = "چای ماسالا" if persian else "Masala chai"
    if with_coupon:
        context["coupon"] = CouponView(
            code="THX-7K3M-9QPX", percent=10, amount=None, expires_at=now + timedelta(days=14)
        )
    return context


def plain_number(value: Decimal) -> Number:
    """15.00 → 15 and 49.90 → 49.9, so `{{ coupon.percent }}%` reads "15%"."""
    if value == value.to_integral_value():
        return int(value)
    return value.normalize()


def _shop(settings: Settings) -> ShopView:
    shop = settings.shop
    return ShopView(name=shop.name, url=shop.url, phone=shop.phone)


def _local(value: datetime | None, zone: ZoneInfo) -> datetime | None:
    return None if value is None else value.astimezone(zone)
