"""The database schema. The ledger (`messages`) is the only state that matters.

Datetimes are stored as naive UTC and handed back aware (UTC), so SQLite and PostgreSQL
behave the same. Derived columns on customers (birthday month-day in both calendars, order
statistics) exist so that every trigger's planning query is an indexed lookup.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
    select,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column, relationship

from campaigner.masking import mask

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in Python, naive UTC in the database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given where UTC is required")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)


class MaskedText(TypeDecorator[str]):
    """Text in which every registered secret is masked on the way in: a provider's error
    may echo the request that carried the password, in any encoding."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else mask(value)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class MessageStatus(StrEnum):
    QUEUED = "queued"  # planned, waiting for its time (maybe claimed: see Message.claim)
    HELD_OUT = "held_out"  # control group: never sent, kept for uplift reports
    SENDING = "sending"  # its own request to the gateway has started
    SENT = "sent"  # accepted by the gateway
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"  # permanent error or out of attempts
    SKIPPED = "skipped"  # policy said no (opted out, no consent, cap, invalid number)
    EXPIRED = "expired"  # could not be sent before max_lateness
    UNKNOWN = "unknown"  # its request was in flight when the answer was lost; never re-sent blindly
    CANCELLED = "cancelled"  # withdrawn before it went out (an announcement disabled or deleted)


class CustomerScore(Base):
    """A paying customer's RFM inputs, scores and segment (campaigner/segments), apart from
    the wide customers row so that rescoring a million customers writes narrow rows only and
    never touches the customer's own data (nor its `updated_at`).

    The inputs come from the customer's paid orders: their number, the last payment time,
    and the currency and spend the monetary score ranks. A customer without a row, or with
    no paid order left (`orders` 0, kept until rescoring records the move), is in "none".
    """

    __tablename__ = "customer_scores"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    orders: Mapped[int] = mapped_column(Integer, default=0)
    last_paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    currency: Mapped[str | None] = mapped_column(String(8))
    spent: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))  # a sum, as total_spent
    recency_score: Mapped[int | None] = mapped_column(Integer)
    frequency_score: Mapped[int | None] = mapped_column(Integer)
    monetary_score: Mapped[int | None] = mapped_column(Integer)
    segment: Mapped[str] = mapped_column(String(24), default="none", server_default="none")
    # When the scores or the segment last moved (a pass that moves nothing writes nothing).
    scored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The first paid order's time: a first placement is a move only when it is recent
    # (campaigner/segments/scoring.py ARRIVAL_WINDOW).
    first_paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Payers' inputs in order: rescoring reads its quintile thresholds from these by walking
    # to a position (campaigner/segments/scoring.py), never by sorting the shop.
    __table_args__ = (
        Index(None, "segment"),
        *(
            Index(None, *on, sqlite_where=text("orders > 0"), postgresql_where=text("orders > 0"))
            for on in (("last_paid_at",), ("orders",), ("currency", "spent"))
        ),
    )


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    first_name: Mapped[str] = mapped_column(String(128), default="")
    last_name: Mapped[str] = mapped_column(String(128), default="")
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    birthday: Mapped[date | None] = mapped_column(Date)
    calendar: Mapped[str] = mapped_column(String(10), default="gregorian")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Tehran")
    locale: Mapped[str] = mapped_column(String(10), default="fa")
    # Stored as ",vip,newsletter," so a tag test is a parameterised LIKE on any database.
    tags: Mapped[str] = mapped_column(Text, default="")
    marketing_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    city: Mapped[str] = mapped_column(String(128), default="")
    # Birthday month*100+day in each calendar (Feb 29 and Esfand 30 stored as they are).
    birth_md: Mapped[int | None] = mapped_column(Integer)
    birth_jalali_md: Mapped[int | None] = mapped_column(Integer)
    # Order statistics over paid orders, kept up to date by imports and sync.
    orders_count: Mapped[int] = mapped_column(Integer, default=0)
    # Wider than an order's total: it adds up all of them (a wholesale buyer in rials).
    total_spent: Mapped[Decimal] = mapped_column(Numeric(18, 2), default=Decimal(0))
    first_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_order_id: Mapped[int | None] = mapped_column(Integer)
    referral_code: Mapped[str | None] = mapped_column(String(32), unique=True)
    # Value segment (RFM, see campaigner/segments), read from customer_scores: "none" until
    # a first paid order. Read-only here: only rescoring writes it, in its own table.
    segment: Mapped[str] = column_property(
        func.coalesce(
            select(CustomerScore.segment)
            .where(CustomerScore.customer_id == id)
            .correlate_except(CustomerScore)
            .scalar_subquery(),
            "none",
        )
    )
    referred_by_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    phone_invalid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the shop last changed this customer (WooCommerce date_modified_gmt, Shopify
    # updated_at): a delivery older than this is stale and changes nothing.
    shop_modified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    orders: Mapped[list[Order]] = relationship(back_populates="customer")

    __table_args__ = (
        Index(None, "birth_md"),
        Index(None, "birth_jalali_md"),
        Index(None, "last_order_at"),
        Index(None, "first_order_at"),
        Index(None, "timezone"),  # the planner's list of zones, one index step per zone
    )

    @property
    def tag_list(self) -> list[str]:
        return [tag for tag in self.tags.split(",") if tag]

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)


class CustomerDate(Base):
    """A date of the customer's own (a child's birthday, a wedding anniversary), by name.

    `calendar` is the one it was written in: `calendar = "customer"` rules celebrate it there.
    Indexed by name and date, so a rule finds who celebrates on a day with one lookup.
    """

    __tablename__ = "customer_dates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    date: Mapped[date] = mapped_column(Date)
    calendar: Mapped[str] = mapped_column(String(10), default="gregorian")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("customer_id", "name"),
        Index(None, "name", "date"),
    )


# The columns of the orders' index per customer, in order.
ORDERS_BY_CUSTOMER = ("customer_id", "paid_at", "status", "currency", "total", "refunded")


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    total: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal(0))
    currency: Mapped[str] = mapped_column(String(8), default="")
    status: Mapped[str] = mapped_column(String(32), default="paid")
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    coupon_code: Mapped[str | None] = mapped_column(String(64))
    referral_code: Mapped[str | None] = mapped_column(String(32))
    items_count: Mapped[int | None] = mapped_column(Integer)
    # Money given back by refunds recorded against this order; revenue is total - refunded.
    refunded: Mapped[Decimal] = mapped_column(
        Numeric(14, 2), default=Decimal(0), server_default="0"
    )
    # 1 for the customer's first paid order, 2 for the second...; set when statistics refresh.
    sequence: Mapped[int | None] = mapped_column(Integer)
    # When the shop last changed this order: an older delivery or sync row is stale.
    shop_modified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="orders")
    items: Mapped[list[OrderItem]] = relationship(
        back_populates="order", order_by="OrderItem.line_no", passive_deletes=True
    )

    __table_args__ = (
        Index(None, "paid_at"),
        # A customer's orders by time, and every column the segments' inputs read
        # (scoring.payer_inputs): grouping a shop's orders per customer walks this index
        # alone, in order, instead of sorting the table (migration orders_1).
        Index(None, *ORDERS_BY_CUSTOMER),
        Index(None, "sequence", "paid_at"),
        # The daily segments pass reads the orders changed since its previous run.
        Index(None, "updated_at"),
    )


class OrderItem(Base):
    """One line of an order: what was bought, so rules and templates can speak of it."""

    __tablename__ = "order_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    line_no: Mapped[int] = mapped_column(Integer)
    product_id: Mapped[str | None] = mapped_column(String(128))
    sku: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(255), default="")
    # Stored as ",shoes,summer," like customer tags: a category test is a parameterised LIKE.
    # A comma inside a name is written %2C (campaigner.customers.categories).
    categories: Mapped[str] = mapped_column(Text, default="")
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    unit_price: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    line_total: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal(0))

    order: Mapped[Order] = relationship(back_populates="items")
    category_rows: Mapped[list[OrderItemCategory]] = relationship(
        order_by="OrderItemCategory.id", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        UniqueConstraint("order_id", "line_no"),
        Index(None, "product_id"),
        Index(None, "sku"),
    )


class OrderItemCategory(Base):
    """One category of a line item, one row each: a name may hold a comma, and "bought in
    this category" and a customer's favourite category are then plain indexed SQL."""

    __tablename__ = "order_item_categories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("order_items.id", ondelete="CASCADE"), index=True
    )
    # Folded by `products.categories.category_key`, as rule files are: matching is exact.
    category: Mapped[str] = mapped_column(String(255))

    __table_args__ = (Index(None, "category", "item_id"),)


class SegmentChange(Base):
    """A customer moving from one value segment to another: what `segment_change` rules
    act on, and the history behind a segment's growth or shrinking."""

    __tablename__ = "segment_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    old: Mapped[str] = mapped_column(String(24))
    new: Mapped[str] = mapped_column(String(24))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "changed_at"), Index(None, "customer_id", "changed_at"))


class ShopEvent(Base):
    """A shop webhook delivery already applied, so a redelivery changes nothing."""

    __tablename__ = "shop_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shop: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("shop", "key"), Index(None, "received_at"))


class Message(Base):
    """One planned occurrence of a rule for a customer: the ledger row."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule: Mapped[str] = mapped_column(String(128))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    occurrence_key: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.QUEUED)
    reason: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    phone: Mapped[str | None] = mapped_column(String(20))
    order_id: Mapped[int | None] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The dispatch pass holding the lease: only it may start or record this row.
    claim: Mapped[str | None] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text)
    segments: Mapped[int | None] = mapped_column(Integer)
    # The customer's value segment when the row was planned, so a report's conversions per
    # segment count where the customer stood then; NULL on rows planned before it was kept.
    customer_segment: Mapped[str | None] = mapped_column(String(24))
    encoding: Mapped[str | None] = mapped_column(String(8))
    gateway: Mapped[str | None] = mapped_column(String(64))
    provider_id: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(MaskedText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Who settled an `unknown` row by hand (`campaigner unknown resolve`), and when.
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("rule", "customer_id", "occurrence_key"),
        Index(None, "status", "scheduled_for"),
        Index(None, "phone", "sent_at"),
        Index(None, "customer_id"),
        Index(None, "provider_id"),
    )


class OptOut(Base):
    __tablename__ = "opt_outs"

    phone: Mapped[str] = mapped_column(String(20), primary_key=True)
    source: Mapped[str] = mapped_column(String(32), default="manual")
    reason: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Coupon(Base):
    __tablename__ = "coupons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    rule: Mapped[str] = mapped_column(String(128))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    percent: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    redeemed_order_id: Mapped[int | None] = mapped_column(Integer)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # One coupon per message, even when a retry renders the message twice.
    __table_args__ = (
        UniqueConstraint("message_id"),
        Index(None, "customer_id"),
        Index(None, "created_at"),
    )


class InboundMessage(Base):
    """A reply from a phone: opt-out keywords act on it, everything is kept."""

    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), index=True)
    text: Mapped[str] = mapped_column(Text, default="")
    gateway: Mapped[str] = mapped_column(String(64), default="")
    provider_id: Mapped[str | None] = mapped_column(String(128))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    action: Mapped[str | None] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("gateway", "provider_id"),)


class NpsResponse(Base):
    """A 0-10 answer to an NPS survey message: one per survey, the latest reply wins."""

    __tablename__ = "nps_responses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(20))
    rule: Mapped[str] = mapped_column(String(128))
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), unique=True
    )
    score: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "received_at"),)


class SyncState(Base):
    """Where each source sync or poller stopped, so the next pass continues from there."""

    __tablename__ = "sync_state"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    cursor: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Announcement(Base):
    """One announcement occurrence (rule name and `at`): who approved it and when, and when
    its audience was queued. The web console's `approver` role writes `approved_by` here."""

    __tablename__ = "announcements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule: Mapped[str] = mapped_column(String(128))
    occurrence_key: Mapped[str] = mapped_column(String(128))
    approved_by: Mapped[str | None] = mapped_column(String(128))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When planning queued the audience, and a fingerprint of the rule and its customers file
    # then: the audience is queued again (never twice for anyone) only when the file changed.
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    queued_fingerprint: Mapped[str | None] = mapped_column(String(64))
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("rule", "occurrence_key"),)


class Draw(Base):
    """A prize draw and its proof: the seed and the SHA-256 of the sorted candidate ids."""

    __tablename__ = "draws"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    source: Mapped[str] = mapped_column(String(500))
    seed: Mapped[str] = mapped_column(String(128))
    candidates: Mapped[int] = mapped_column(Integer)
    candidates_sha256: Mapped[str] = mapped_column(String(64))
    drawn_by: Mapped[str] = mapped_column(String(128), default="")
    drawn_at: Mapped[datetime] = mapped_column(UTCDateTime)

    winners: Mapped[list[DrawWinner]] = relationship(
        order_by="DrawWinner.place", passive_deletes=True
    )


class DrawWinner(Base):
    __tablename__ = "draw_winners"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    draw_id: Mapped[int] = mapped_column(ForeignKey("draws.id", ondelete="CASCADE"))
    place: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    # The winner's external id when drawn: the proof names it even if the customer changes.
    external_id: Mapped[str] = mapped_column(String(128))

    __table_args__ = (
        UniqueConstraint("draw_id", "place"),
        UniqueConstraint("draw_id", "customer_id"),
    )


class ConsoleUser(Base):
    """Someone who may sign in to the web console, with one role."""

    __tablename__ = "console_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8), default="fa")
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConsoleSession(Base):
    """A signed-in browser. Only a hash of its token is kept, so a database leak signs no one in."""

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("console_users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConsoleLoginFailure(Base):
    """A failed sign-in, counted per client for the rate limit: `address` is an IPv4 address
    or an IPv6 /64 (`forwarded.limit_key`). A failure is stored twice, once as that and once
    as its IPv4 /24 or IPv6 /48 (`forwarded.network_key`), the wider limit's count."""

    __tablename__ = "console_login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_name: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ConsoleKey(Base):
    """The key that signs session cookies: made once, shared by every daemon of the shop."""

    __tablename__ = "console_keys"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))


class AuditEntry(Base):
    """One change made through the console: who, when, what (a diff for files)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    user_name: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
