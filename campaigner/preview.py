"""What one rule would send one customer at one moment, or why it would send nothing.

A marketer's question before deploying a rule. The answer is found by the trigger's own
compiled query restricted to that customer, so it cannot drift from what the planner does.
Rendering may issue a coupon or a referral code: it runs in a transaction that is rolled
back, so the real database is left as it was.
"""

from __future__ import annotations

from calendar import isleap
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.announcements import gate
from campaigner.config import Settings
from campaigner.db.models import Customer, Message, OptOut, Order
from campaigner.errors import CampaignerError
from campaigner.messages.render import MessageRenderer, RenderError
from campaigner.messages.templates import MessageTemplates
from campaigner.planner import customer_zones, holdout_bucket, is_held_out
from campaigner.policy import SendingPolicy
from campaigner.products.bought import order_contains
from campaigner.products.reorder import reorder_days
from campaigner.rulebook import check_rules
from campaigner.rules.models import (
    AnnouncementAudience,
    AnnouncementRule,
    Audience,
    BirthdayRule,
    CrossSellRule,
    PostPurchaseRule,
    ReferralRequestRule,
    ReplenishRule,
    Rule,
    SegmentChangeRule,
    WinBackRule,
)
from campaigner.rules.triggers import DueContext, compile_due
from campaigner.rules.triggers.announcement import audience_extras, spread_offset
from campaigner.rules.triggers.birthday import month_days
from campaigner.rules.triggers.common import audience_filter, customers, send_instant
from campaigner.runtime import rule_policy

messages = cast(Table, Message.__table__)


@dataclass
class Preview:
    """The verdict for (rule, customer, moment): a rendered text, or the reasons it has none."""

    rule: str
    at: datetime
    customer_id: str | None = None  # external id; None when nobody is due
    reasons: list[str] = field(default_factory=list)
    text: str | None = None
    segments: int | None = None
    encoding: str | None = None
    sends_at: datetime | None = None  # when it would actually go (the send window)
    sample_codes: bool = False  # the coupon / referral code shown is an example

    @property
    def due(self) -> bool:
        return self.text is not None and not self.reasons


def load_rule(settings: Settings, name: str) -> Rule:
    """The rule named `name`. One that is there but failed to load (a TOML mistake leaves
    its name unknown: its file's name stands for it) is refused with the loader's problems,
    each naming its file and, where known, the line or field."""
    loaded = check_rules(settings)
    rule = loaded.rules.get(name)
    if rule is None:
        problems = [str(p) for p in loaded.problems if name in (p.rule, p.file.stem)]
        if problems:
            raise CampaignerError(
                f"rule {name!r} exists but failed to load: " + "; ".join(problems)
            )
        known = ", ".join(sorted(loaded.rules)) or "none"
        raise CampaignerError(f"no rule named {name!r} (rules: {known})")
    return rule


def preview(
    settings: Settings,
    sessions: sessionmaker[Session],
    rule: Rule,
    at: datetime,
    customer_id: str | None = None,
) -> Preview:
    """Render `rule` for the customer with that external id (or the first one due) at `at`."""
    result = Preview(rule=rule.name, at=at)
    with sessions() as session:
        try:
            zones = customer_zones(session, settings)
            dialect = session.get_bind().dialect.name
            shop = ZoneInfo(settings.customers.timezone)
            overrides = settings.occasions.overrides
            ctx = DueContext(at - rule.lateness, at, zones, dialect, shop, occasions=overrides)
            if customer_id is None:
                customer = _first_due(session, rule, ctx)
                if customer is None:
                    result.reasons.append(f"nobody is due for {rule.name} at this time")
                    return result
            else:
                customer = session.scalars(
                    select(Customer).where(Customer.external_id == customer_id)
                ).first()
                if customer is None:
                    raise CampaignerError(f"no customer with id {customer_id!r}")
            result.customer_id = customer.external_id
            _explain(session, settings, rule, ctx, customer, result)
            if isinstance(rule, AnnouncementRule) and not gate.is_approved(session, rule):
                result.reasons.append(
                    f"not approved: nothing is queued until `campaigner announce {rule.name} "
                    "--confirm` (or approved = true in its file)"
                )
        finally:
            session.rollback()
    return result


def _first_due(session: Session, rule: Rule, ctx: DueContext) -> Customer | None:
    found: list[int] = []
    for statement in compile_due(rule, ctx):
        due = statement.subquery("due")
        planned = (
            select(messages.c.id)
            .where(
                messages.c.rule == rule.name,
                messages.c.customer_id == due.c.customer_id,
                messages.c.occurrence_key == due.c.occurrence_key,
            )
            .exists()
        )
        query = select(due.c.customer_id).where(~planned).order_by(due.c.customer_id)
        if rule.holdout_percent > 0:
            threshold = round(rule.holdout_percent * 100)
            query = query.where(holdout_bucket(rule.name, due.c.customer_id) >= threshold)
        first = session.scalars(query.limit(1)).first()
        if first is not None:
            found.append(first)
    return session.get(Customer, min(found)) if found else None


def _explain(
    session: Session,
    settings: Settings,
    rule: Rule,
    ctx: DueContext,
    customer: Customer,
    result: Preview,
) -> None:
    result.reasons.extend(_ineligible(session, settings, rule, customer, result.at))
    occurrences = []
    for statement in compile_due(rule, ctx):
        due = statement.subquery("due")
        first = session.execute(
            select(due.c.occurrence_key, due.c.due_at, due.c.expires_at, due.c.order_id)
            .where(due.c.customer_id == customer.id)
            .order_by(due.c.due_at)
        ).first()
        if first is not None:
            occurrences.append(first)
    occurrence = min(occurrences, key=lambda row: row.due_at, default=None)
    if occurrence is None:
        if not result.reasons:
            result.reasons.append(_not_due(session, settings, rule, customer, result.at))
        return
    key, due_at, expires_at, order_id = occurrence
    row = session.execute(
        select(messages.c.status, messages.c.updated_at).where(
            messages.c.rule == rule.name,
            messages.c.customer_id == customer.id,
            messages.c.occurrence_key == key,
        )
    ).first()
    if row is not None:
        result.reasons.append(
            f"already in the ledger for this occurrence ({key}): {row.status} "
            f"since {_local(row.updated_at, settings)}"
        )
        return
    if is_held_out(rule, customer.id):
        result.reasons.append(
            f"held out: in the rule's {rule.holdout_percent:g}% control group, never sent"
        )
        return
    policy = SendingPolicy(settings.sending, settings.customers.timezone)
    zone = policy.zone(customer.timezone)
    opening = policy.next_opening(result.at, zone, rule_policy(rule))
    if opening > result.at:
        if expires_at is not None and opening > expires_at:
            result.reasons.append(
                f"outside the send window, and it expires ({_local(expires_at, settings)}) "
                f"before the window opens ({_local(opening, settings)})"
            )
            return
        result.reasons.append(f"outside the send window: it would go at {_local(opening, zone)}")
    result.sends_at = max(opening, result.at)
    _render(session, settings, rule, customer, key, due_at, order_id, result)


def _render(
    session: Session,
    settings: Settings,
    rule: Rule,
    customer: Customer,
    key: str,
    due_at: datetime,
    order_id: int | None,
    result: Preview,
) -> None:
    message = Message(
        rule=rule.name,
        customer_id=customer.id,
        occurrence_key=key,
        order_id=order_id,
        phone=customer.phone,
        due_at=due_at,
        scheduled_for=due_at,
    )
    had_code = bool(customer.referral_code)
    renderer = MessageRenderer(settings, MessageTemplates(settings.paths.templates, settings))
    try:
        rendered = renderer.render(session, message, rule, result.sends_at or result.at)
    except RenderError as exc:
        result.reasons.append(f"cannot be rendered: {exc}")
        return
    result.text, result.segments, result.encoding = (
        rendered.text,
        rendered.segments,
        rendered.encoding,
    )
    result.sample_codes = rule.coupon is not None or not had_code


def _ineligible(
    session: Session, settings: Settings, rule: Rule, customer: Customer, at: datetime
) -> list[str]:
    """Every reason the customer may not receive this rule's messages at all."""
    reasons = []
    if not customer.phone:
        reasons.append("no phone number")
    elif customer.phone_invalid_at is not None:
        reasons.append(f"invalid number (reported {customer.phone_invalid_at:%Y-%m-%d})")
    elif session.get(OptOut, customer.phone) is not None:
        reasons.append(f"opted out ({customer.phone})")
    if not rule.transactional and not customer.marketing_consent:
        reasons.append("no marketing consent")
    checks: list[tuple[str, Audience]] = []
    for name, value in rule.audience.model_dump(exclude_defaults=True).items():
        if name in ANNOUNCEMENT_EXTRAS:
            continue
        if name == "where":
            for test in value:
                shown = f"{test['field']} {test['op']} {test['value']}"
                checks.append((shown, Audience.model_validate({"where": [test]})))
        elif name in ("bought_any", "bought_none"):
            spec = getattr(rule.audience, name)
            within = f" within {spec.within}" if spec.within else ""
            shown = f"{name} {spec.described()}{within}"
            checks.append((shown, Audience.model_validate({name: value})))
        else:
            checks.append((f"{name} = {value}", Audience.model_validate({name: value})))
    for shown, audience in checks:
        inside = select(customers.c.id).where(
            customers.c.id == customer.id, *audience_filter(audience, at)
        )
        if session.scalar(inside) is None:
            reasons.append(f"not in the audience: {shown}")
    if isinstance(rule, AnnouncementRule):
        reasons.extend(_outside_extras(session, settings, rule, customer))
    return reasons


ANNOUNCEMENT_EXTRAS = frozenset(AnnouncementAudience.model_fields) - frozenset(
    Audience.model_fields
)


def _outside_extras(
    session: Session, settings: Settings, rule: AnnouncementRule, customer: Customer
) -> list[str]:
    """Which of an announcement's own audience keys leave the customer out."""
    reasons = []
    shop = ZoneInfo(settings.customers.timezone)
    dialect = session.get_bind().dialect.name
    for name, value in rule.audience.model_dump(exclude_defaults=True).items():
        if name not in ANNOUNCEMENT_EXTRAS:
            continue
        alone = rule.model_copy(update={"audience": AnnouncementAudience(**{name: value})})
        inside = select(customers.c.id).where(
            customers.c.id == customer.id, *audience_extras(alone, shop, dialect)
        )
        if session.scalar(inside) is None:
            reasons.append(f"not in the audience: {name} = {value}")
    return reasons


def _not_due(
    session: Session, settings: Settings, rule: Rule, customer: Customer, at: datetime
) -> str:
    """Nothing due at `at`: say when it next would be, where that is easy to tell."""
    zone = ZoneInfo(customer.timezone) if customer.timezone else ZoneInfo("UTC")
    lateness = rule.max_lateness or rule.default_lateness
    nothing = f"no occurrence due at this time (max_lateness {lateness})"
    if isinstance(rule, BirthdayRule):
        if customer.birth_md is None:
            return "no birthday on file"
        calendar = rule.calendar if rule.calendar != "customer" else customer.calendar
        wanted = customer.birth_jalali_md if calendar == "jalali" else customer.birth_md
        day = at.astimezone(zone).date()
        for offset in range(0, 367 + int(isleap(day.year))):
            candidate = day + timedelta(days=offset)
            celebrated, _ = month_days(candidate + timedelta(days=rule.days_before), calendar)
            moment = send_instant(candidate, rule.send_time, zone)
            if wanted in celebrated and moment > at:
                return f"{nothing}; next due {_local(moment, zone)}"
        return nothing
    if isinstance(rule, WinBackRule):
        if customer.last_order_at is None or customer.orders_count < rule.min_orders:
            return f"{nothing}; needs at least {rule.min_orders} paid order(s)"
        ready = customer.last_order_at + timedelta(days=rule.inactive_days)
        day = ready.astimezone(zone).date()
        moment = send_instant(day, rule.send_time, zone)
        if moment < ready:
            moment = send_instant(day + timedelta(days=1), rule.send_time, zone)
        when = "next due" if moment > at else "was due"
        return f"{nothing}; {when} {_local(moment, zone)} (inactive since last order)"
    if isinstance(rule, SegmentChangeRule):
        return f"{nothing}; due {rule.when()} (now in {customer.segment})"
    if isinstance(rule, AnnouncementRule):
        local = ZoneInfo(settings.customers.timezone) if rule.timezone == "shop" else zone
        start = rule.local_at.replace(tzinfo=local)
        spread = int(rule.spread_td.total_seconds())
        moment = start + timedelta(seconds=spread_offset(rule.name, customer.id, spread))
        when = "due" if moment > at else "was due"
        return f"{nothing}; {when} {_local(moment, zone)}"
    if isinstance(rule, ReferralRequestRule):
        qualifying = session.scalars(
            select(Order.paid_at).where(
                Order.customer_id == customer.id,
                Order.sequence == rule.after_orders,
                Order.status == "paid",
            )
        ).first()
        if qualifying is None:
            return f"{nothing}; due {rule.delay} after paid order number {rule.after_orders}"
        moment = qualifying + rule.delay_td
        when = "next due" if moment > at else "was due"
        return f"{nothing}; {when} {_local(moment, zone)}"
    if isinstance(rule, CrossSellRule | ReplenishRule):
        return f"{nothing}; {_product_hint(session, rule, customer, at, zone)}"
    if isinstance(rule, PostPurchaseRule):
        upcoming = session.scalars(
            select(Order.paid_at)
            .where(
                Order.customer_id == customer.id,
                Order.status == "paid",
                Order.paid_at > at - rule.delay_td,
            )
            .order_by(Order.paid_at)
        ).first()
        if upcoming is None:
            return f"{nothing}; due {rule.delay} after the customer's next paid order"
        return f"{nothing}; next due {_local(upcoming + rule.delay_td, zone)}"
    return nothing


def _product_hint(
    session: Session,
    rule: CrossSellRule | ReplenishRule,
    customer: Customer,
    at: datetime,
    zone: ZoneInfo,
) -> str:
    """When the customer's last purchase of the rule's products makes it due."""
    last = session.scalars(
        select(Order)
        .where(
            Order.customer_id == customer.id,
            Order.status == "paid",
            Order.paid_at <= at,
            order_contains(rule.bought, Order.id),
        )
        .order_by(Order.paid_at.desc(), Order.id.desc())
    ).first()
    if last is None or last.paid_at is None:
        return f"has not bought {rule.bought.described()}"
    if isinstance(rule, CrossSellRule):
        moment = last.paid_at + rule.after_td
        because = f"after order {last.external_id}, unless {rule.suggest.described()} is bought"
    else:
        days = rule.days if rule.days != "auto" else reorder_days(session, rule.bought, at)
        if days is None:
            return 'days = "auto": nobody has bought it twice yet'
        moment = last.paid_at + timedelta(days=days)
        because = f"{days} days after order {last.external_id}, unless bought again"
    when = "next due" if moment > at else "was due"
    return f"{when} {_local(moment, zone)} ({because})"


def _local(moment: datetime, zone: ZoneInfo | Settings) -> str:
    if isinstance(zone, Settings):
        zone = ZoneInfo(zone.customers.timezone)
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z").strip()
