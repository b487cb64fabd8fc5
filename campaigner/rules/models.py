"""Rule files as pydantic models, one per trigger, told apart by the `trigger` key.

Every model forbids unknown keys, so a typo in a rule file is an error at load time
instead of a rule that silently does nothing.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Annotated, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from campaigner.config import SendWindow
from campaigner.customers.fields import DATE_NAME
from campaigner.occasions import OccasionDate, parse_occasion_date
from campaigner.rules.durations import MAX_DAYS, parse_duration
from campaigner.segments.rfm_map import NO_SEGMENT, SEGMENTS

_TIME = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")

# Upper bounds for every number a rule file holds: far beyond any real rule, and small
# enough for the database's integer columns and Python's date arithmetic.
MAX_COUNT = 1_000_000_000
MAX_PRIORITY = 1_000_000
MAX_MONEY = Decimal(10**15)
MAX_LATENESS_DAYS = 366
MAX_SEGMENTS = 100


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


def _check_lateness(value: str | None) -> str | None:
    if value is not None and parse_duration(value) > timedelta(days=MAX_LATENESS_DAYS):
        raise ValueError(f"must be at most {MAX_LATENESS_DAYS}d, got {value.strip()!r}")
    return value


Duration = Annotated[str, AfterValidator(_check_duration)]
Lateness = Annotated[Duration | None, AfterValidator(_check_lateness)]
Days = Annotated[int, Field(ge=1, le=MAX_DAYS)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Money = Annotated[Decimal, Field(ge=0, le=MAX_MONEY)]
# Strict: TOML already gives real types, and `true` must not become the number 1.
Scalar = StrictStr | StrictBool | StrictInt | StrictFloat


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Condition(Strict):
    """One `{field, op, value}` test on a whitelisted customer column; never raw SQL."""

    field: Literal[
        "city",
        "locale",
        "calendar",
        "timezone",
        "orders_count",
        "total_spent",
        "external_id",
        "first_name",
        "last_name",
    ]
    op: Literal["=", "!=", "<", "<=", ">", ">=", "in", "not_in"]
    value: Scalar | list[Scalar] = Field(union_mode="left_to_right")

    @model_validator(mode="after")
    def _value_fits_op(self) -> Condition:
        is_list = isinstance(self.value, list)
        if self.op in ("in", "not_in") and not is_list:
            raise ValueError(f'op {self.op!r} needs a list value, e.g. ["a", "b"]')
        if self.op not in ("in", "not_in") and is_list:
            raise ValueError(f"op {self.op!r} needs a single value, not a list")
        values = self.value if isinstance(self.value, list) else [self.value]
        if len(values) > MAX_LIST:
            raise ValueError(f"at most {MAX_LIST} values")
        for value in values:
            _check_value(self.field, value)
        return self


MAX_LIST = 1000
NUMERIC_FIELDS = frozenset({"orders_count", "total_spent"})


def _check_value(field: str, value: Scalar) -> None:
    """A number for a numeric column, text for a text one: the database compares like with
    like (PostgreSQL has no `integer > text`), and the number fits its column."""
    if field in NUMERIC_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{field} takes a number, got {value!r}")
        if not -MAX_MONEY <= value <= MAX_MONEY:
            raise ValueError(f"{field} takes a number between -{MAX_MONEY} and {MAX_MONEY}")
    elif not isinstance(value, str):
        raise ValueError(f"{field} takes text, got {value!r}")


class Audience(Strict):
    """Who may receive the rule's message, on top of consent and a valid phone."""

    tags_any: list[str] = Field([], max_length=MAX_LIST)
    tags_all: list[str] = Field([], max_length=MAX_LIST)
    tags_none: list[str] = Field([], max_length=MAX_LIST)
    min_orders: Count | None = None
    max_orders: Count | None = None
    min_total_spent: Money | None = None
    locale: str | list[str] | None = None
    segments: list[str] = Field([], max_length=len(SEGMENTS) + 1)
    where: list[Condition] = Field([], max_length=100)

    @field_validator("segments")
    @classmethod
    def _known_segments(cls, segments: list[str]) -> list[str]:
        return check_segments(segments)

    @field_validator("tags_any", "tags_all", "tags_none")
    @classmethod
    def _clean_tags(cls, tags: list[str]) -> list[str]:
        cleaned = [tag.strip().lower() for tag in tags]
        if any(not tag or "," in tag for tag in cleaned):
            raise ValueError("tags must be non-empty and contain no comma")
        return cleaned

    @property
    def locales(self) -> list[str]:
        if self.locale is None:
            return []
        return [self.locale] if isinstance(self.locale, str) else list(self.locale)


def check_segments(segments: list[str]) -> list[str]:
    known = (*SEGMENTS, NO_SEGMENT)
    unknown = [name for name in segments if name not in known]
    if unknown:
        raise ValueError(
            f"unknown segment(s) {', '.join(map(repr, unknown))}; known: {', '.join(known)}"
        )
    return segments


class CouponSpec(Strict):
    """A unique code per message: either a percentage or a fixed amount off."""

    percent: float | None = Field(None, gt=0, le=100)
    amount: float | None = Field(None, gt=0, le=float(MAX_MONEY))
    valid_days: Days = 14
    prefix: str = Field("", max_length=12, pattern=r"^[A-Za-z0-9]*$")

    @model_validator(mode="after")
    def _one_kind(self) -> CouponSpec:
        if (self.percent is None) == (self.amount is None):
            raise ValueError("give exactly one of percent or amount")
        return self


class RuleBase(Strict):
    """Fields every rule has, whatever its trigger."""

    default_lateness: ClassVar[str] = "1d"

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = Field("", max_length=10_000)
    template: str = Field(min_length=1, max_length=200)
    enabled: bool = True
    priority: int = Field(0, ge=-MAX_PRIORITY, le=MAX_PRIORITY)
    send_at: str = "10:00"
    max_lateness: Lateness = None
    holdout_percent: float = Field(0, ge=0, le=50)
    audience: Audience = Audience()
    coupon: CouponSpec | None = None
    transactional: bool = False
    max_segments: int | None = Field(None, ge=1, le=MAX_SEGMENTS)
    window: str | None = None
    max_per_day: Count | None = None
    max_per_week: Count | None = None
    attribution_days: int = Field(7, ge=0, le=MAX_DAYS)

    @field_validator("template")
    @classmethod
    def _inside_templates(cls, value: str) -> str:
        """The name is looked up inside the templates folder: an absolute one or one with
        `..` would reach beside it (and pathlib refuses to glob an absolute name)."""
        if value.startswith("/") or ".." in PurePosixPath(value).parts:
            raise ValueError(
                f"template {value!r} must be a name inside the templates folder, "
                "without a leading / or .."
            )
        return value

    @field_validator("send_at")
    @classmethod
    def _time_of_day(cls, value: str) -> str:
        match = _TIME.match(value)
        if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
            raise ValueError(f"send_at must be a time of day like 10:00, got {value!r}")
        return value

    @field_validator("window")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        if value is not None:
            SendWindow.parse(value)
        return value

    @property
    def send_time(self) -> time:
        hours, minutes = self.send_at.strip().split(":")
        return time(int(hours), int(minutes))

    @property
    def lateness(self) -> timedelta:
        """How long after its due time an occurrence may still be planned and sent."""
        return parse_duration(self.max_lateness or self.default_lateness)

    @property
    def template_stem(self) -> str:
        """The template's name without `.j2` or a locale: "birthday" for "birthday.j2"."""
        return self.template.removesuffix(".j2")

    @property
    def send_window(self) -> SendWindow | None:
        return SendWindow.parse(self.window) if self.window else None


class PostPurchaseRule(RuleBase):
    """`delay` after an order is paid (a thank-you, care instructions, ...)."""

    trigger: Literal["post_purchase"]
    delay: Duration
    min_order_total: Money | None = None
    first_order_only: bool = False

    @property
    def delay_td(self) -> timedelta:
        return parse_duration(self.delay)

    def when(self) -> str:
        return f"{self.delay} after a paid order"


class BirthdayRule(RuleBase):
    """On the birthday (or `days_before` it) at `send_at`, in the customer's own time zone."""

    default_lateness: ClassVar[str] = "12h"

    trigger: Literal["birthday"]
    days_before: int = Field(0, ge=0, le=30)
    calendar: Literal["gregorian", "jalali", "customer"] = "customer"

    def when(self) -> str:
        day = f"{self.days_before} days before the birthday" if self.days_before else "birthday"
        return f"{day} at {self.send_at} ({self.calendar} calendar)"


class WinBackRule(RuleBase):
    """`inactive_days` after the last paid order, at `send_at`; a new order starts over."""

    default_lateness: ClassVar[str] = "2d"

    trigger: Literal["win_back"]
    inactive_days: Days
    min_orders: int = Field(1, ge=1, le=MAX_COUNT)

    def when(self) -> str:
        return f"{self.inactive_days} days after the last order, at {self.send_at}"


class ReferralRequestRule(RuleBase):
    """`delay` after a customer's `after_orders`-th paid order: a happy, returning customer."""

    default_lateness: ClassVar[str] = "2d"

    trigger: Literal["referral_request"]
    after_orders: int = Field(ge=1, le=MAX_COUNT)
    delay: Duration
    min_total_spent: Money | None = None

    @property
    def delay_td(self) -> timedelta:
        return parse_duration(self.delay)

    def when(self) -> str:
        return f"{self.delay} after paid order number {self.after_orders}"


class NpsSurveyRule(PostPurchaseRule):
    """Asks for a 0-10 score `delay` after a paid order; replies count within `response_window`."""

    trigger: Literal["nps_survey"]  # type: ignore[assignment]
    response_window: Duration = "3d"

    @property
    def response_window_td(self) -> timedelta:
        return parse_duration(self.response_window)

    def when(self) -> str:
        return f"{self.delay} after a paid order, replies counted for {self.response_window}"


class SegmentChangeRule(RuleBase):
    """The day a customer moves from a segment in `from` to one in `to` (e.g. loyal ->
    at_risk), at most once per `cooldown` for a customer bouncing between segments."""

    trigger: Literal["segment_change"]
    from_: list[str] = Field([], alias="from", max_length=len(SEGMENTS) + 1)
    to: list[str] = Field(min_length=1, max_length=len(SEGMENTS) + 1)
    cooldown: Duration = "30d"

    @field_validator("from_", "to")
    @classmethod
    def _known_segments(cls, segments: list[str]) -> list[str]:
        return check_segments(segments)

    @field_validator("cooldown")
    @classmethod
    def _at_least_a_day(cls, value: str) -> str:
        if parse_duration(value) < timedelta(days=1):
            raise ValueError(f"must be at least 1d, got {value.strip()!r}")
        return value

    @property
    def cooldown_td(self) -> timedelta:
        return parse_duration(self.cooldown)

    def when(self) -> str:
        source = ", ".join(self.from_) if self.from_ else "any segment"
        return f"the day a customer moves from {source} to {', '.join(self.to)}"


class OccasionRule(RuleBase):
    """A calendar occasion (Nowruz, Yalda, Black Friday, Eid), `days_before` it at `send_at`,
    in each customer's own time zone; the occasion's date is the occurrence key."""

    default_lateness: ClassVar[str] = "12h"

    trigger: Literal["occasion"]
    date: str = Field(max_length=40)
    occasion: str = Field("", max_length=100, description="Its name in templates")
    days_before: int = Field(0, ge=0, le=60)

    @field_validator("date")
    @classmethod
    def _occasion_date(cls, value: str) -> str:
        return parse_occasion_date(value).key

    @property
    def occasion_date(self) -> OccasionDate:
        return parse_occasion_date(self.date)

    @property
    def occasion_name(self) -> str:
        return self.occasion or self.name

    def when(self) -> str:
        day = f"{self.days_before} days before {self.date}" if self.days_before else self.date
        return f"{day} at {self.send_at}"


MAX_YEARS = 120


class PersonalDateRule(RuleBase):
    """A customer's own date (a child's birthday, a wedding anniversary, the first order),
    `days_before` it at `send_at`; the year of the anniversary is the occurrence key."""

    default_lateness: ClassVar[str] = "12h"

    trigger: Literal["personal_date"]
    date: str = Field(pattern=DATE_NAME, description="A stored date's name, or first_order")
    calendar: Literal["gregorian", "jalali", "customer"] = "customer"
    days_before: int = Field(0, ge=0, le=60)
    years: list[Annotated[int, Field(ge=1, le=MAX_YEARS)]] = Field([], max_length=MAX_YEARS)
    occasion: str = Field("", max_length=100, description="Its name in templates")

    @property
    def occasion_name(self) -> str:
        return self.occasion or self.date

    def when(self) -> str:
        day = f"{self.days_before} days before {self.date}" if self.days_before else self.date
        years = f", years {', '.join(map(str, self.years))}" if self.years else ""
        return f"{day} at {self.send_at} ({self.calendar} calendar{years})"


MAX_SPREAD = timedelta(days=7)
_AT = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})[T ](\d{1,2}):(\d{2})\s*$")


def _check_spread(value: str | None) -> str | None:
    if value is not None and parse_duration(value) > MAX_SPREAD:
        raise ValueError(f"must be at most 7d, got {value.strip()!r}")
    return value


class AnnouncementAudience(Audience):
    """An announcement's audience: what every rule has, plus where the customers live, how
    recently they bought, and an explicit list of customers."""

    cities: list[str] = Field([], max_length=MAX_LIST)
    last_order_before: str | None = None
    last_order_after: str | None = None
    customers_file: str | None = Field(None, min_length=1, max_length=500)

    @field_validator("last_order_before", "last_order_after")
    @classmethod
    def _date(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                datetime.strptime(value.strip(), "%Y-%m-%d")
            except ValueError:
                raise ValueError(f"must be a date like 2026-06-01, got {value!r}") from None
        return value

    @field_validator("customers_file")
    @classmethod
    def _relative(cls, value: str | None) -> str | None:
        if value is not None and (value.startswith("/") or ".." in value.split("/")):
            raise ValueError("must be a path inside the rules folder, like customers/vip.csv")
        return value


class AnnouncementRule(RuleBase):
    """One message at `at` to an audience; queued only once approved, withdrawn if the file
    is disabled or deleted before it went out."""

    default_lateness: ClassVar[str] = "12h"

    trigger: Literal["announcement"]
    at: str
    timezone: Literal["customer", "shop"] = "customer"
    spread: Annotated[Duration | None, AfterValidator(_check_spread)] = None
    approved: StrictBool = False
    audience: AnnouncementAudience = AnnouncementAudience()
    # Customers named by `audience.customers_file`: external ids and E.164 phones, read by
    # the loader (the file is relative to the rules folder).
    _listed_ids: frozenset[str] = PrivateAttr(frozenset())
    _listed_phones: frozenset[str] = PrivateAttr(frozenset())

    @field_validator("at")
    @classmethod
    def _moment(cls, value: str) -> str:
        match = _AT.match(value)
        try:
            if not match:
                raise ValueError
            datetime.strptime(
                f"{match.group(1)} {match.group(2)}:{match.group(3)}", "%Y-%m-%d %H:%M"
            )
        except ValueError:
            raise ValueError(
                f"at must be a local date and time like 2026-12-20T10:00, got {value!r}"
            ) from None
        return value

    @property
    def local_at(self) -> datetime:
        """`at` as a naive local date and time (read in each recipient's zone, or the shop's)."""
        match = _AT.match(self.at)
        assert match is not None
        day, hours, minutes = match.groups()
        return datetime.strptime(f"{day} {int(hours):02d}:{minutes}", "%Y-%m-%d %H:%M")

    @property
    def occurrence_key(self) -> str:
        """The announcement's `at`, written one way: with the rule's name, the ledger's key."""
        return self.local_at.strftime("%Y-%m-%dT%H:%M")

    @property
    def spread_td(self) -> timedelta:
        return parse_duration(self.spread) if self.spread else timedelta(0)

    @property
    def listed(self) -> tuple[frozenset[str], frozenset[str]]:
        """External ids and phones of `audience.customers_file` (empty without one)."""
        return self._listed_ids, self._listed_phones

    def set_listed(self, ids: frozenset[str], phones: frozenset[str]) -> None:
        self._listed_ids, self._listed_phones = ids, phones

    def when(self) -> str:
        zone = "shop time" if self.timezone == "shop" else "each customer's time"
        spread = f", spread over {self.spread}" if self.spread else ""
        return f"once at {self.occurrence_key} ({zone}){spread}"


class DrawWinnerRule(RuleBase):
    """Messages the winners of the prize draw `draw` (see `campaigner draw`), once each."""

    default_lateness: ClassVar[str] = "2d"

    trigger: Literal["draw_winner"]
    draw: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")

    def when(self) -> str:
        return f"to the winners of draw {self.draw!r}, when it is drawn"


Rule = Annotated[
    PostPurchaseRule
    | BirthdayRule
    | WinBackRule
    | ReferralRequestRule
    | NpsSurveyRule
    | SegmentChangeRule
    | OccasionRule
    | PersonalDateRule
    | AnnouncementRule
    | DrawWinnerRule,
    Field(discriminator="trigger"),
]
TRIGGERS = (
    "post_purchase",
    "birthday",
    "win_back",
    "referral_request",
    "nps_survey",
    "segment_change",
    "occasion",
    "personal_date",
    "announcement",
    "draw_winner",
)
