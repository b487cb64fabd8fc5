"""Settings: `config.toml` first, `CAMPAIGNER_*` environment variables on top.

Every section forbids unknown keys so that a typo fails at start-up instead of being
silently ignored. Secrets are `SecretStr` so that printing the settings never shows them.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import date, time
from decimal import Decimal
from ipaddress import ip_network
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from campaigner.customers.fields import (
    CUSTOMER_FIELDS,
    ITEM_SOURCE_FIELDS,
    ORDER_FIELDS,
    canonical_field,
    is_field,
)
from campaigner.errors import ConfigError
from campaigner.masking import MIN_LENGTH as MIN_SECRET_LENGTH
from campaigner.occasions import check_overrides, parse_occasion_date
from campaigner.segments.rfm_map import SegmentMap
from campaigner.shops.topics import ORDER_DELETED, WooCommerceTopic
from campaigner.timezones import check_timezone as check_timezone  # re-exported

log = logging.getLogger(__name__)

ENV_PREFIX = "CAMPAIGNER_"

_JALALI_MONTH_DAY = re.compile(r"^jalali:(\d{1,2})-(\d{1,2})$")
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeysProblem(ValueError):
    """A problem of several keys of one section together: pydantic reports it on the section,
    so `keys` (paths inside it) say where to look; each may come from the file or the
    environment."""

    def __init__(self, message: str, keys: Sequence[tuple[str, ...]]) -> None:
        super().__init__(message)
        self.keys = tuple(keys)


class ShopSettings(Section):
    name: str = "My Shop"
    url: str = "https://shop.example"
    phone: str = ""


def _maskable(secret: str) -> str:
    """Logs, errors and history mask every secret, but only from MIN_SECRET_LENGTH
    characters up: a shorter one would mask ordinary words, so it would leak instead."""
    if 0 < len(secret) < MIN_SECRET_LENGTH:
        count = f"{len(secret)} character{'s' if len(secret) > 1 else ''}"
        raise ValueError(
            f"too short to be kept out of logs ({count}): a secret needs at least "
            f"{MIN_SECRET_LENGTH} characters"
        )
    return secret


def _maskable_secret(value: SecretStr) -> SecretStr:
    _maskable(value.get_secret_value())
    return value


def _maskable_url_password(url: str) -> str:
    """A database URL's password, like any secret, must be long enough to be masked."""
    try:
        password = make_url(url).password
    except ArgumentError:
        return url  # not a URL at all: the engine says so, naming it
    if password is not None:
        try:
            _maskable(str(password))
        except ValueError as exc:
            raise ValueError(f"its password is {exc}") from None
    return url


def _maskable_secret_url(value: SecretStr) -> SecretStr:
    _maskable_url_password(value.get_secret_value())
    return value


Secret = Annotated[SecretStr, AfterValidator(_maskable_secret)]
SecretUrl = Annotated[SecretStr, AfterValidator(_maskable_secret_url)]


def _known_database(url: str) -> str:
    """`postgres://` and `postgresql://` (as hosting services and most guides write them)
    name the driver Campaigner installs, psycopg 3 (SQLAlchemy's default for them, psycopg2,
    is not installed); any other unknown scheme is said here, naming the setting, instead of
    as a traceback from the first command that connects."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url  # not a URL at all: the engine says so, naming it
    if parsed.drivername in ("postgres", "postgresql"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        raise ValueError(
            f"{parsed.drivername!r} is no database Campaigner knows: write "
            "sqlite:///campaigner.db or postgresql+psycopg://user@host/database"
        ) from None
    return url


class DatabaseSettings(Section):
    url: Annotated[str, AfterValidator(_maskable_url_password), AfterValidator(_known_database)] = (
        "sqlite:///campaigner.db"
    )
    echo: bool = False
    lock_timeout: float = Field(
        30.0, gt=0, description="SQLite: seconds to wait for another writer before failing"
    )


class PathSettings(Section):
    rules: Path = Path("rules")
    templates: Path = Path("templates/messages")


class CustomerDefaults(Section):
    region: str = Field("IR", description="Region for phone numbers written without a country code")
    timezone: str = "Asia/Tehran"
    locale: str = "fa"
    currency: str = "IRT"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_timezone(value)


class SendWindow(BaseModel):
    """A daily window such as 09:00-20:00, in the recipient's time zone."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> SendWindow:
        match = _WINDOW.match(text)
        if not match:
            raise ValueError(f"send window must look like 09:00-20:00, got {text!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h2 == 24 and m2 == 0:
            h2, m2 = 23, 59
        try:
            return cls(start=time(h1, m1), end=time(h2, m2))
        except ValueError as exc:
            raise ValueError(f"send window {text!r}: {exc}") from None

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


class SendingSettings(Section):
    window: str = "09:00-20:00"
    max_per_day: int = Field(1, ge=0)
    max_per_week: int = Field(3, ge=0)
    quiet_weekdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = []
    quiet_dates: list[str] = Field(
        default_factory=list,
        description="Gregorian YYYY-MM-DD or Jalali 'jalali:MM-DD' (every year) dates",
    )
    max_attempts: int = Field(5, ge=1)
    retry_base_seconds: float = Field(30.0, gt=0)
    lease_seconds: int = Field(120, ge=5)
    batch_size: int = Field(500, ge=1)

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        SendWindow.parse(value)
        return value

    @field_validator("quiet_dates")
    @classmethod
    def _quiet_dates(cls, values: list[str]) -> list[str]:
        for value in values:
            jalali = _JALALI_MONTH_DAY.match(value)
            if jalali:
                month, day = int(jalali[1]), int(jalali[2])
                if not (1 <= month <= 12 and 1 <= day <= (31 if month <= 6 else 30)):
                    raise ValueError(f"{value!r}: no such Jalali month and day")
                continue
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value!r}: expected YYYY-MM-DD or jalali:MM-DD") from None
        return values

    @property
    def send_window(self) -> SendWindow:
        return SendWindow.parse(self.window)


# An option whose key holds one of these words is a secret: `options` is free-form, and an
# operator passes a provider's API key or signing secret there as readily as anything else.
SECRET_OPTION_WORDS = ("key", "token", "secret", "password", "pass", "auth", "signature")


def is_secret_option(key: str, declared: Collection[str] = ()) -> bool:
    """Whether option `key` holds a secret: it looks like one, or its gateway says it is."""
    lowered = key.lower()
    return key in declared or any(word in lowered for word in SECRET_OPTION_WORDS)


def _texts(value: object) -> Iterator[str]:
    """Every scalar inside an option value, as text (an option may be a table or a list)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


class GatewaySettings(Section):
    """One SMS gateway. Which fields matter depends on `name` (see README, Gateways)."""

    name: str = "console"
    sender: str = ""
    url: str = ""
    username: str = ""
    password: Secret | None = None
    api_key: Secret | None = None
    account_sid: str = ""
    auth_token: Secret | None = None
    path: Path | None = None
    rate_per_second: float = Field(0, ge=0, description="0 means unlimited")
    max_in_flight: int = Field(4, ge=1)
    timeout_seconds: float = Field(10.0, gt=0)
    fallback: str = Field(
        "", description="Name of a [gateways.NAME] table used when this one fails"
    )
    webhook_token: Secret | None = Field(
        None, description="This gateway's own webhook secret; default: server.webhook_token"
    )
    options: dict[str, Any] = Field(default_factory=dict)

    def secret_options(self, declared: Collection[str] = ()) -> list[str]:
        """The values of the options that hold secrets (`is_secret_option`), to mask."""
        return [
            text
            for key, value in self.options.items()
            if is_secret_option(str(key), declared)
            for text in _texts(value)
        ]


class MessageSettings(Section):
    fallback_name: dict[str, str] = Field(
        default_factory=lambda: {"fa": "مشتری عزیز", "en": "there"}
    )
    optout_footer: dict[str, str] = Field(
        default_factory=lambda: {"fa": "لغو۱۱", "en": "Reply STOP to opt out"}
    )
    referral_url: str = "https://shop.example/r/{code}"
    optout_keywords: list[str] = Field(
        default_factory=lambda: [
            "STOP",
            "STOPALL",
            "UNSUBSCRIBE",
            "CANCEL",
            "END",
            "QUIT",
            "لغو",
            "11",
        ]
    )
    optin_keywords: list[str] = Field(default_factory=lambda: ["START", "UNSTOP", "YES", "12"])
    render_timeout_seconds: float = Field(
        1.0, gt=0, le=60, description="CPU seconds one message's template may take to render"
    )
    render_max_chars: int = Field(
        10_000, ge=1_000, le=1_000_000, description="Longest text a template may build"
    )
    max_segments: int = Field(
        10, ge=1, le=100, description="No message longer than this goes out, whatever the rule"
    )


TriggerName = Literal[
    "post_purchase",
    "birthday",
    "win_back",
    "referral_request",
    "nps_survey",
    "segment_change",
    "cross_sell",
    "replenish",
    "announcement",
    "draw_winner",
    "occasion",
    "personal_date",
]


def _slow_triggers() -> dict[TriggerName, float]:
    return {"birthday": 900.0, "win_back": 900.0, "occasion": 900.0, "personal_date": 900.0}


class DaemonSettings(Section):
    plan_interval: float = Field(60.0, gt=0, description="Seconds between planning passes")
    plan_intervals: dict[TriggerName, float] = Field(default_factory=_slow_triggers)
    dispatch_interval: float = Field(5.0, gt=0)
    reconcile_interval: float = Field(60.0, gt=0)
    inbound_poll_interval: float = Field(60.0, gt=0)
    watch_interval: float = Field(5.0, gt=0, description="How often rule files are checked")
    stop_timeout: float = Field(30.0, gt=0, description="Grace for the batch in flight on stop")
    unhealthy_after_failures: int = Field(
        3, ge=1, description="/healthz is 503 once a task has failed this many times in a row"
    )
    unhealthy_after_intervals: float = Field(
        5.0, ge=1, description="... or has gone this many of its intervals without a success"
    )
    gone_after: float = Field(
        300.0, gt=0, description="`status` hides a daemon not heard from for this many seconds"
    )


HEAD_TIMEOUT_SECONDS = 10.0  # how long a slow mobile link may take to send a request head
MAX_WAITING_CONNECTIONS = 1000  # far more than Kannel and the shops keep open between requests
SEND_TIMEOUT_SECONDS = 10.0  # a client reading at all takes a byte of its answer sooner


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8025, ge=0, le=65535)
    public_url: str = Field(
        "", description="How gateways reach this server, e.g. https://sms.shop.example"
    )
    webhook_token: Secret | None = None
    api_tokens: list[Secret] = Field(default_factory=list)
    woocommerce_webhook_secret: Secret | None = Field(
        None, description="The Secret of the shop's WooCommerce webhooks"
    )
    woocommerce_webhook_secrets: dict[WooCommerceTopic, Secret] = Field(
        default_factory=dict,
        description="A Secret per topic, for webhooks that have their own (the others use "
        'woocommerce_webhook_secret), e.g. { "order.deleted" = "..." }. order.deleted is '
        "acted on only with a secret of its own here, or when a WooCommerce source confirms "
        'the order is in the bin: its body, {"id": N}, is also the body of every '
        "customer, product and coupon deletion",
    )
    shopify_webhook_secret: Secret | None = Field(
        None, description="The Shopify app's client secret that signs its webhooks"
    )
    max_body_bytes: int = Field(1_000_000, ge=1024)
    body_timeout_seconds: float = Field(
        10.0, gt=0, description="A request body must arrive whole within this time (else 408)"
    )
    head_timeout_seconds: float = Field(
        HEAD_TIMEOUT_SECONDS,
        gt=0,
        description="A request head must arrive whole within this time (else 408 and close)",
    )
    send_timeout_seconds: float = Field(
        SEND_TIMEOUT_SECONDS,
        gt=0,
        description="A client that takes none of its answer for this long is disconnected",
    )
    max_waiting_connections: int = Field(
        MAX_WAITING_CONNECTIONS,
        ge=1,
        description="Connections waiting for a request beyond this: the longest waiting is closed",
    )
    max_unverified_requests: int = Field(
        16,
        ge=1,
        description="Bodies read at once before their signature is checked (4 per client): "
        "a newcomer takes the place of the slowest, which gets 503",
    )

    @model_validator(mode="after")
    def _deletions_signed_apart(self) -> ServerSettings:
        """order.deleted's own secret must be its own: shared with another topic, a signed
        `{"id": N}` of a customer, product or coupon deletion would cancel order N."""
        own = self.woocommerce_webhook_secrets.get(ORDER_DELETED)
        if own is None:
            return self
        shared: list[tuple[str, ...]] = [
            ("woocommerce_webhook_secrets", str(topic))
            for topic, secret in self.woocommerce_webhook_secrets.items()
            if topic != ORDER_DELETED and secret == own
        ]
        if self.woocommerce_webhook_secret == own:
            shared.insert(0, ("woocommerce_webhook_secret",))
        if shared:
            names = ", ".join(".".join(key) for key in shared)
            raise KeysProblem(
                f'woocommerce_webhook_secrets."{ORDER_DELETED}" is also {names}: '
                "give the Order deleted webhook a Secret of its own (WooCommerce makes one "
                "when the field is left empty), used by no other webhook",
                [("woocommerce_webhook_secrets", str(ORDER_DELETED)), *shared],
            )
        return self


class ConsoleSettings(Section):
    """The marketer's web console under /console (see README "The console")."""

    enabled: bool = True
    host: str = Field(
        "", description="Serve the console on its own address; empty: under [server] at /console"
    )
    port: int = Field(0, ge=0, le=65535, description="Its own port, with host; 0: [server]'s")
    session_idle_minutes: float = Field(30.0, gt=0, description="Signed out after this idle")
    session_max_hours: float = Field(12.0, gt=0, description="... and this long after sign-in")
    max_failed_logins: int = Field(5, ge=1, description="Failures in a row that lock a user")
    lockout_minutes: float = Field(15.0, gt=0)
    max_failed_logins_per_ip: int = Field(
        20,
        ge=1,
        description="Failures from one address (IPv6: one /64) within lockout_minutes, any user",
    )
    max_failed_logins_per_network: int = Field(
        100,
        ge=1,
        description="Failures from one IPv6 /48 (its 65,536 /64s together) or one IPv4 /24 "
        "(its 256 addresses) within lockout_minutes, any user",
    )
    git_commit: bool = Field(True, description="Commit each saved rule when rules/ is in git")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed; none by default",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, values: list[str]) -> list[str]:
        for value in values:
            ip_network(value.strip(), strict=False)  # ValueError names it
        return values

    @property
    def separate(self) -> bool:
        return bool(self.host) or self.port != 0


class SourceTable(Section):
    """Where one kind of record (customers or orders) is read in a shop's database."""

    table: str = Field("", description="A table or view, e.g. wp_wc_orders")
    query: str = Field("", description="Or a SELECT written by the DBA")
    columns: dict[str, str] = Field(
        default_factory=dict, description="Campaigner field -> source column"
    )
    cursor: str = Field(
        "", description="A column that grows whenever a row changes; default: the id column"
    )
    status_values: dict[str, str] = Field(
        default_factory=dict, description='Source status -> Campaigner status ("paid", ...)'
    )
    consent_values: dict[str, bool] = Field(
        default_factory=dict, description="Source consent value -> yes (true) or no (false)"
    )
    birthday_format: Literal["auto", "gregorian", "jalali"] = "auto"
    strict: bool = Field(False, description="A column that matches no field stops the sync")

    @model_validator(mode="after")
    def _table_or_query(self) -> SourceTable:
        if self.table.strip() and self.query.strip():
            raise ValueError("give either `table` or `query`")
        return self

    @property
    def reads_own_rows(self) -> bool:
        """A table or query of its own, rather than a preset's."""
        return bool(self.table.strip() or self.query.strip())

    def field_columns(self, fields: tuple[str, ...]) -> dict[str, str]:
        """The column mapping keyed by canonical Campaigner field names."""
        mapping = {canonical_field(name): column for name, column in self.columns.items()}
        unknown = sorted(name for name in mapping if not is_field(name, fields))
        if unknown:
            raise ValueError(
                f"columns: unknown field(s) {', '.join(unknown)}; known: {', '.join(fields)}"
            )
        return mapping


class SourceSettings(Section):
    """A shop database that Campaigner reads (never writes) customers and orders from."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    url: SecretUrl = Field(description="SQLAlchemy URL; its password is a secret")
    interval: float = Field(60.0, gt=0, description="Seconds between syncs in the daemon")
    timezone: str = Field("", description="Zone of date/times without an offset; default: shop's")
    batch_size: int = Field(1000, ge=1, le=10_000)
    preset: Literal["woocommerce"] | None = Field(
        None, description="Read a known shop's own schema: no SQL to write"
    )
    table_prefix: str = Field("wp_", pattern=r"^[A-Za-z0-9_]*$", max_length=32)
    customers: SourceTable | None = None
    orders: SourceTable | None = None
    items: SourceTable | None = Field(
        None,
        description="Line items, read for each batch of orders by order_id (needs orders)",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_timezone(value) if value else value

    @model_validator(mode="after")
    def _mappings(self) -> SourceSettings:
        if self.preset is None:
            if self.customers is None and self.orders is None:
                raise ValueError(
                    'a source needs [sources.customers] or [sources.orders] (or preset = "...")'
                )
            for kind, spec in (("customers", self.customers), ("orders", self.orders)):
                if spec is not None and not spec.reads_own_rows:
                    raise ValueError(f"[sources.{kind}]: give either `table` or `query`")
        if self.customers is not None:
            self.customers.field_columns(CUSTOMER_FIELDS)
        if self.orders is not None:
            self.orders.field_columns(ORDER_FIELDS)
        if self.items is not None:
            if self.orders is None or self.preset is not None:
                raise ValueError(
                    "[sources.items] goes with [sources.orders]: items are read for each "
                    "batch of orders (a preset reads its own)"
                )
            if not self.items.reads_own_rows:
                raise ValueError("[sources.items]: give either `table` or `query`")
            self.items.field_columns(ITEM_SOURCE_FIELDS)
        return self

    @property
    def safe_url(self) -> str:
        return mask_url(self.url.get_secret_value())


class PricingSettings(Section):
    """What one SMS segment costs, to estimate a rule's spend in reports."""

    gsm7: float = Field(0.0075, ge=0)
    ucs2: float = Field(0.0075, ge=0)
    currency: str = "USD"


class OccasionSettings(Section):
    """Corrections to computed occasion dates, for the years the official calendar differs
    (a Hijri month that began a day later in Iran than in the Umm al-Qura tables)."""

    overrides: dict[str, dict[int, date]] = Field(
        default_factory=dict,
        description="Occasion date -> { Gregorian year = official day }, e.g. "
        '"hijri:10-01" = { 2027 = "2027-03-10" }',
    )

    @field_validator("overrides")
    @classmethod
    def _known_dates(cls, overrides: dict[str, dict[int, date]]) -> dict[str, dict[int, date]]:
        checked: dict[str, dict[int, date]] = {}
        for text, years in overrides.items():
            spec = parse_occasion_date(text)
            try:
                check_overrides(spec, years)
            except ValueError as exc:
                raise ValueError(f"{text!r}: {exc}") from None
            checked[spec.key] = years
        return checked


class ReportSettings(Section):
    min_group_size: int = Field(
        30, ge=1, description="Below this many people in a group, uplift says 'not enough data'"
    )
    churn_days: int = Field(90, ge=1, description="Days without a purchase that count as churned")
    convert_to: str | None = Field(
        None, description="Currency of the converted totals (default: pricing.currency)"
    )
    exchange_rates: dict[str, Decimal] = Field(
        default_factory=dict,
        description="Value of one unit of each currency in convert_to, e.g. { AED = 0.27 }",
    )

    @field_validator("exchange_rates")
    @classmethod
    def _positive_rates(cls, rates: dict[str, Decimal]) -> dict[str, Decimal]:
        bad = sorted(code for code, rate in rates.items() if not rate.is_finite() or rate <= 0)
        if bad:
            raise ValueError(f"exchange rate must be a positive number: {', '.join(bad)}")
        return {code.strip().upper(): rate for code, rate in rates.items()}

    @field_validator("convert_to")
    @classmethod
    def _upper(cls, code: str | None) -> str | None:
        return code.strip().upper() if code else None


class SegmentSettings(Section):
    """Value segments (RFM): the map from recency/frequency scores to named segments."""

    map: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Replaces the standard map whole, e.g. { champions = ["5[4-5]"], ... }',
    )
    daily_interval: float = Field(
        86400.0,
        gt=0,
        description="Seconds between the daemon's segments passes: inputs of the customers "
        "whose orders changed since the previous pass, then the shop-wide ranking",
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed_interval(cls, data: Any) -> Any:
        """`full_interval` said "full", but the pass rereads only the orders changed since
        the previous one; the old name is still read, with a warning, for existing files."""
        if not isinstance(data, dict) or "full_interval" not in data:
            return data
        if "daily_interval" in data:
            raise ValueError("give `daily_interval` only (`full_interval` is its old name)")
        log.warning(
            "[segments] full_interval is deprecated: rename it daily_interval"
            " (the same seconds between the daemon's segments passes)"
        )
        data = dict(data)
        data["daily_interval"] = data.pop("full_interval")
        return data

    @field_validator("map")
    @classmethod
    def _valid_map(cls, patterns: dict[str, list[str]]) -> dict[str, list[str]]:
        if patterns:
            SegmentMap.parse(patterns)
        return patterns

    @property
    def segment_map(self) -> SegmentMap:
        return SegmentMap.parse(self.map) if self.map else SegmentMap.standard()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
    )

    config_file: ClassVar[Path | None] = None

    shop: ShopSettings = ShopSettings()
    database: DatabaseSettings = DatabaseSettings()
    paths: PathSettings = PathSettings()
    customers: CustomerDefaults = CustomerDefaults()
    sending: SendingSettings = SendingSettings()
    gateway: GatewaySettings = GatewaySettings()
    gateways: dict[str, GatewaySettings] = Field(default_factory=dict)
    messages: MessageSettings = MessageSettings()
    server: ServerSettings = ServerSettings()
    console: ConsoleSettings = ConsoleSettings()
    daemon: DaemonSettings = DaemonSettings()
    sources: list[SourceSettings] = Field(default_factory=list)

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: list[SourceSettings]) -> list[SourceSettings]:
        names = [source.name for source in sources]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"source name(s) used twice: {', '.join(repeated)}")
        return sources

    pricing: PricingSettings = PricingSettings()
    reports: ReportSettings = ReportSettings()
    segments: SegmentSettings = SegmentSettings()

    occasions: OccasionSettings = OccasionSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = getattr(settings_cls, "config_file", None)
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    def resolve_paths(self, base: Path) -> Settings:
        """Relative paths in a config file are relative to that file, not to the shell."""
        paths = self.paths.model_copy(
            update={
                "rules": base / self.paths.rules,
                "templates": base / self.paths.templates,
            }
        )
        db = self.database.model_copy(update={"url": _resolve_sqlite(self.database.url, base)})
        gateway = _resolve_gateway_path(self.gateway, base)
        gateways = {name: _resolve_gateway_path(t, base) for name, t in self.gateways.items()}
        sources = [
            source.model_copy(
                update={"url": SecretStr(_resolve_sqlite(source.url.get_secret_value(), base))}
            )
            for source in self.sources
        ]
        return self.model_copy(
            update={
                "paths": paths,
                "database": db,
                "gateway": gateway,
                "gateways": gateways,
                "sources": sources,
            }
        )


def _resolve_gateway_path(gateway: GatewaySettings, base: Path) -> GatewaySettings:
    if gateway.path is None:
        return gateway
    return gateway.model_copy(update={"path": base / gateway.path})


def _resolve_sqlite(url: str, base: Path) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        rest = url[len(prefix) :]
        if rest and rest != ":memory:":
            return prefix + str((base / rest).resolve())
    return url


def load_settings(path: str | os.PathLike[str]) -> Settings:
    """Settings from the config file at `path` with the environment on top.

    A missing file is an error, as is any unknown key or bad value; each problem names where
    the value came from (the file, or the environment variable that set it).
    """
    config_path = Path(path)
    if not config_path.is_file():
        raise ConfigError(f"{config_path}: configuration file not found")
    cls = type("FileSettings", (Settings,), {"config_file": config_path})
    try:
        settings = cls()
    except ValidationError as exc:
        raise ConfigError(_describe(exc, config_path)) from None
    except SettingsError as exc:  # only the environment's JSON values are parsed this early
        raise ConfigError(_unparsable(exc, config_path)) from None
    except ValueError as exc:  # TOML syntax errors surface as ValueError subclasses
        raise ConfigError(f"{config_path}: {exc}") from None
    return settings.resolve_paths(config_path.parent)


def origin(loc: Sequence[str | int], config_file: Path | None) -> str:
    """Where the value at `loc` (e.g. ("gateway", "name")) came from: the environment variable
    that set it or a section holding it, else the config file."""
    values = {
        name.upper(): value
        for name, value in os.environ.items()
        if name.upper().startswith(ENV_PREFIX)
    }
    parts = [str(part).upper() for part in loc]
    for end in range(len(parts), 0, -1):
        variable = ENV_PREFIX + "__".join(parts[:end])
        if variable in values and _holds(values[variable], loc[end:]):
            return f"environment variable {variable}"
    return str(config_file) if config_file is not None else "settings"


def _holds(value: str, rest: Sequence[str | int]) -> bool:
    """Whether a variable's value gives the value at `rest` inside it. A table given as JSON
    is merged with the file's table key by key, so the file's own keys in it are not the
    variable's; a list, or anything but a table, replaces what the file had whole."""
    if not rest:
        return True
    try:
        held: Any = json.loads(value)
    except json.JSONDecodeError:
        return True  # not JSON: a value for the whole of `rest` (settings parse it later)
    for part in rest:
        if not isinstance(held, dict):
            return True
        key = str(part)
        # Field names are matched without regard to case, as pydantic-settings does.
        same = [name for name in held if name == key] or [
            name for name in held if isinstance(name, str) and name.lower() == key.lower()
        ]
        if not same:
            return False
        held = held[same[0]]
    return True


def origin_of(settings: Settings, *loc: str | int) -> str:
    return origin(loc, settings.config_file)


def _describe(exc: ValidationError, path: Path | None) -> str:
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        cause = error.get("ctx", {}).get("error")
        locs = [error["loc"]]
        if isinstance(cause, KeysProblem):
            locs = [(*error["loc"], *inner) for inner in cause.keys]
        where = " and ".join(dict.fromkeys(origin(loc, path) for loc in locs))
        problems.append(f"{where}: {key}: {message}")
    return "; ".join(problems)


def _unparsable(exc: SettingsError, path: Path) -> str:
    """pydantic-settings names only the top field ("server") and the source class: the
    variable meant is the one whose value should be JSON and is not. Its value is never
    repeated: it may be a secret."""
    cause = exc.__cause__
    reason = f" ({cause.msg})" if isinstance(cause, json.JSONDecodeError) else ""
    culprits = []
    for name, value in sorted(os.environ.items()):
        parts = name.upper().removeprefix(ENV_PREFIX).lower().split("__")
        if not name.upper().startswith(ENV_PREFIX) or not _expects_json(Settings, parts):
            continue
        try:
            json.loads(value)
        except ValueError:
            culprits.append(name.upper())
    if not culprits:
        return f"{path}: {exc}"
    variables = "environment variable" + ("s " if len(culprits) > 1 else " ")
    return f"{variables}{', '.join(culprits)}: not valid JSON{reason}"


def _expects_json(model: type[BaseModel], parts: Sequence[str]) -> bool:
    """Whether the setting that environment variable path `parts` names (`server`,
    `woocommerce_webhook_secrets`) is a table or list, which the environment gives as JSON."""
    annotation: Any = model
    for part in parts:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part)
            if field is None:
                return False
            annotation = field.annotation
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        else:
            return False
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return get_origin(annotation) in (dict, list)


def _unwrap(annotation: Any) -> Any:
    """`X | None` and `Annotated[X, ...]` as X."""
    while True:
        origin_ = get_origin(annotation)
        if origin_ is Annotated:
            annotation = get_args(annotation)[0]
        elif origin_ in (Union, UnionType):
            kinds = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(kinds) != 1:
                return annotation
            annotation = kinds[0]
        else:
            return annotation


def masked(
    settings: Settings, declared: Callable[[str], Collection[str]] = lambda name: ()
) -> dict[str, Any]:
    """The effective settings as plain data, with every secret replaced by '********'.

    `declared(gateway name)` names the options that gateway declares secret, beyond those
    whose key looks secret (`is_secret_option`).
    """

    def walk(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return "********" if value.get_secret_value() else ""
        if isinstance(value, BaseModel):
            return {name: walk(getattr(value, name)) for name in type(value).model_fields}
        if isinstance(value, dict):
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        if isinstance(value, Path):
            return str(value)
        return value

    result: dict[str, Any] = walk(settings)
    shown = [(result["gateway"], settings.gateway)]
    shown += [(result["gateways"][name], table) for name, table in settings.gateways.items()]
    for data, table in shown:
        secret = declared(table.name)
        data["options"] = {
            key: "********" if is_secret_option(str(key), secret) else value
            for key, value in data["options"].items()
        }
    result["database"]["url"] = mask_url(settings.database.url)
    for shown, source in zip(result["sources"], settings.sources, strict=True):
        shown["url"] = source.safe_url
    return result


def mask_url(url: str) -> str:
    """Hide the password in a database URL such as postgresql://user:pw@host/db."""
    return re.sub(r"(://[^:/@]+:)[^@]*(@)", r"\1********\2", url)
