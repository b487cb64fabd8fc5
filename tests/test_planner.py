"""The planner on SQLite and PostgreSQL: each trigger due / not yet / too late / once,
audiences, holdouts, consent, birthdays across calendars and time zones, racing planners."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import TypeAdapter
from shop_builders import put_segment
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from campaigner.calendars import jalali_month_day, month_day, parse_date
from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.customers.importer import import_csv, refresh_customer_stats
from campaigner.customers.loader import load_customers
from campaigner.db import create_engine_for, upgrade
from campaigner.db.models import Customer, Message, OptOut, Order
from campaigner.planner import (
    PlanReport,
    _distinct_zones,
    count_due,
    customer_zones,
    day_bounds,
    is_held_out,
    plan,
    unplanned,
)
from campaigner.rules.models import Audience, Condition, Rule
from campaigner.segments import SegmentMap
from campaigner.segments.scoring import refresh_inputs, rescore

TEHRAN = ZoneInfo("Asia/Tehran")
NEW_YORK = ZoneInfo("America/New_York")


def make_rule(**fields: Any) -> Rule:
    fields.setdefault("template", "x")
    fields.setdefault("name", fields["trigger"])
    return TypeAdapter(Rule).validate_python(fields)


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, zone: Any = UTC
) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=zone).astimezone(UTC)


@dataclass
class Row:
    rule: str
    customer_id: int
    key: str
    status: str
    due_at: datetime
    order_id: int | None


class Shop:
    """Customers and orders written through the ORM; statistics refreshed as an import does."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings
        self._n = 0

    def customer(
        self,
        *,
        phone: str | None = "auto",
        birthday: str | None = None,
        calendar: str = "gregorian",
        timezone: str = "Asia/Tehran",
        consent: bool = True,
        tags: str = "",
        locale: str = "fa",
        city: str = "",
        phone_invalid: bool = False,
    ) -> int:
        self._n += 1
        born = parse_date(birthday) if birthday else None
        with self.sessions.begin() as session:
            customer = Customer(
                external_id=f"c{self._n}",
                first_name=f"Name{self._n}",
                phone=f"+98912{self._n:07d}" if phone == "auto" else phone,
                birthday=born,
                birth_md=month_day(born) if born else None,
                birth_jalali_md=jalali_month_day(born) if born else None,
                calendar=calendar,
                timezone=timezone,
                marketing_consent=consent,
                tags=tags,
                locale=locale,
                city=city,
                phone_invalid_at=at(2025, 1, 1) if phone_invalid else None,
            )
            session.add(customer)
            session.flush()
            return customer.id

    def order(
        self, customer_id: int, paid_at: datetime, total: str = "100", status: str = "paid"
    ) -> int:
        self._n += 1
        with self.sessions.begin() as session:
            order = Order(
                external_id=f"o{self._n}",
                customer_id=customer_id,
                total=Decimal(total),
                status=status,
                paid_at=paid_at,
            )
            session.add(order)
            session.flush()
            refresh_customer_stats(session, [customer_id])
            return order.id

    def opt_out(self, customer_id: int) -> None:
        with self.sessions.begin() as session:
            phone = session.get_one(Customer, customer_id).phone
            assert phone
            session.add(OptOut(phone=phone))

    def plan(self, rules: list[Rule], clock: FixedClock) -> PlanReport:
        with self.sessions.begin() as session:
            return plan(session, rules, clock, self.settings)

    def plan_at(self, rules: list[Rule], when: datetime) -> PlanReport:
        return self.plan(rules, FixedClock(when))

    def ledger(self) -> list[Row]:
        with self.sessions() as session:
            return [
                Row(m.rule, m.customer_id, m.occurrence_key, m.status, m.due_at, m.order_id)
                for m in session.scalars(select(Message).order_by(Message.id))
            ]


@pytest.fixture
def shop(sessions: sessionmaker[Session], settings: Settings) -> Shop:
    return Shop(sessions, settings)


# --- post_purchase ----------------------------------------------------------------------------

THANKS = {"trigger": "post_purchase", "delay": "2h", "max_lateness": "1d", "priority": 50}


def test_post_purchase_due_creates_one_queued_row(shop: Shop, clock: FixedClock) -> None:
    customer = shop.customer()
    order = shop.order(customer, clock.now() - timedelta(hours=3))
    report = shop.plan([make_rule(**THANKS)], clock)
    assert report.rules["post_purchase"].planned == 1
    [row] = shop.ledger()
    assert (row.customer_id, row.key, row.status, row.order_id) == (
        customer,
        str(order),
        "queued",
        order,
    )
    assert row.due_at == clock.now() - timedelta(hours=1)
    with shop.sessions() as session:
        message = session.scalars(select(Message)).one()
        assert message.scheduled_for == message.due_at
        assert message.expires_at == message.due_at + timedelta(days=1)
        assert message.priority == 50 and message.phone == "+989120000001"
        assert message.created_at == clock.now()


def test_post_purchase_not_yet_due_then_due(shop: Shop, clock: FixedClock) -> None:
    customer = shop.customer()
    shop.order(customer, clock.now() - timedelta(minutes=90))
    rules = [make_rule(**THANKS)]
    assert shop.plan(rules, clock).planned == 0
    clock.advance(timedelta(minutes=29))
    assert shop.plan(rules, clock).planned == 0
    clock.advance(timedelta(minutes=1))
    assert shop.plan(rules, clock).planned == 1


def test_post_purchase_history_is_never_blasted(shop: Shop, clock: FixedClock) -> None:
    customer = shop.customer()
    for days in range(2, 730, 7):
        shop.order(customer, clock.now() - timedelta(days=days))
    recent = shop.order(customer, clock.now() - timedelta(hours=5))
    assert shop.plan([make_rule(**THANKS)], clock).planned == 1
    assert [row.key for row in shop.ledger()] == [str(recent)]


def test_rerun_and_overlapping_ticks_never_add_a_second_row(shop: Shop, clock: FixedClock) -> None:
    customer = shop.customer()
    shop.order(customer, clock.now() - timedelta(hours=3))
    rules = [make_rule(**THANKS)]
    assert shop.plan(rules, clock).planned == 1
    assert shop.plan(rules, clock).planned == 0
    clock.advance(timedelta(hours=5))
    assert shop.plan(rules, clock).planned == 0
    assert len(shop.ledger()) == 1


def test_post_purchase_options(shop: Shop, clock: FixedClock) -> None:
    first = shop.customer()
    shop.order(first, clock.now() - timedelta(hours=3), total="50")
    returning = shop.customer()
    shop.order(returning, clock.now() - timedelta(days=100), total="500")
    shop.order(returning, clock.now() - timedelta(hours=3), total="500")
    big = make_rule(**THANKS, name="big", min_order_total=100)
    welcome = make_rule(**THANKS, name="welcome", first_order_only=True)
    report = shop.plan([big, welcome], clock)
    assert {(r.rule, r.customer_id) for r in shop.ledger()} == {
        ("big", returning),
        ("welcome", first),
    }
    assert report.planned == 2


def test_unpaid_orders_are_ignored(shop: Shop, clock: FixedClock) -> None:
    customer = shop.customer()
    shop.order(customer, clock.now() - timedelta(hours=3), status="refunded")
    assert shop.plan([make_rule(**THANKS)], clock).planned == 0


def test_disabled_rules_plan_nothing(shop: Shop, clock: FixedClock) -> None:
    shop.order(shop.customer(), clock.now() - timedelta(hours=3))
    report = shop.plan([make_rule(**THANKS, enabled=False)], clock)
    assert report.rules == {} and shop.ledger() == []


def test_nps_survey_is_due_after_a_paid_order(shop: Shop, clock: FixedClock) -> None:
    customer = shop.customer()
    order = shop.order(customer, clock.now() - timedelta(days=3, hours=1))
    shop.order(shop.customer(), clock.now() - timedelta(days=1))
    rule = make_rule(trigger="nps_survey", delay="3d", response_window="2d")
    assert shop.plan([rule], clock).planned == 1
    assert [(r.customer_id, r.key) for r in shop.ledger()] == [(customer, str(order))]


# --- consent and audience ---------------------------------------------------------------------


def test_only_reachable_consenting_customers_are_planned(shop: Shop, clock: FixedClock) -> None:
    ok = shop.customer()
    opted_out = shop.customer()
    shop.opt_out(opted_out)
    no_consent = shop.customer(consent=False)
    no_phone = shop.customer(phone=None)
    invalid = shop.customer(phone_invalid=True)
    for customer in (ok, opted_out, no_consent, no_phone, invalid):
        shop.order(customer, clock.now() - timedelta(hours=3))
    shop.plan([make_rule(**THANKS)], clock)
    assert [r.customer_id for r in shop.ledger()] == [ok]
    # A transactional message needs no marketing consent, but still respects an opt-out.
    shop.plan([make_rule(**THANKS, name="receipt", transactional=True)], clock)
    receipts = {r.customer_id for r in shop.ledger() if r.rule == "receipt"}
    assert receipts == {ok, no_consent}


def test_audience_filters(shop: Shop, clock: FixedClock) -> None:
    vip = shop.customer(tags=",vip,newsletter,", city="Tehran")
    vip_en = shop.customer(tags=",vip,", locale="en", city="Shiraz")
    plain = shop.customer(tags=",newsletter,", city="Tehran")
    tricky = shop.customer(tags=",vip_x,", city="Tehran")  # '_' is no wildcard
    for customer in (vip, vip_en, plain, tricky):
        shop.order(customer, clock.now() - timedelta(hours=3), total="200")
    shop.order(vip, clock.now() - timedelta(days=40), total="1000")

    def audience(name: str, **filters: Any) -> Rule:
        return make_rule(**THANKS, name=name, audience=filters)

    shop.plan(
        [
            audience("any", tags_any=["vip", "gold"]),
            audience("all", tags_all=["vip", "newsletter"]),
            audience("none", tags_none=["vip"]),
            audience("loyal", min_orders=2),
            audience("new", max_orders=1),
            audience("spender", min_total_spent=1000),
            audience("english", locale="en"),
            audience("cities", where=[{"field": "city", "op": "in", "value": ["Shiraz"]}]),
            audience(
                "mixed",
                tags_any=["vip"],
                where=[
                    {"field": "city", "op": "!=", "value": "Shiraz"},
                    {"field": "orders_count", "op": ">=", "value": 2},
                ],
            ),
        ],
        clock,
    )
    got: dict[str, set[int]] = {}
    for row in shop.ledger():
        got.setdefault(row.rule, set()).add(row.customer_id)
    assert got == {
        "any": {vip, vip_en},
        "all": {vip},
        "none": {plain, tricky},
        "loyal": {vip},
        "new": {vip_en, plain, tricky},
        "spender": {vip},
        "english": {vip_en},
        "cities": {vip_en},
        "mixed": {vip},
    }


# --- holdout ----------------------------------------------------------------------------------


def test_holdout_is_stable_rule_salted_and_the_same_everywhere(
    shop: Shop, clock: FixedClock
) -> None:
    customers = [shop.customer() for _ in range(200)]
    for customer in customers:
        shop.order(customer, clock.now() - timedelta(hours=3))
    first = make_rule(**THANKS, name="first", holdout_percent=30)
    second = make_rule(**THANKS, name="second", holdout_percent=30)
    report = shop.plan([first, second], clock)
    held = {
        name: {r.customer_id for r in shop.ledger() if r.rule == name and r.status == "held_out"}
        for name in ("first", "second")
    }
    # The database computes exactly what Python computes, on SQLite and PostgreSQL alike.
    assert held["first"] == {c for c in customers if is_held_out(first, c)}
    assert held["second"] == {c for c in customers if is_held_out(second, c)}
    assert 30 <= len(held["first"]) <= 90
    assert held["first"] != held["second"]
    assert report.rules["first"].held_out == len(held["first"])
    assert report.rules["first"].planned == 200 - len(held["first"])
    # The next occurrence puts the same customers in the control group.
    clock.advance(timedelta(days=2))
    for customer in customers:
        shop.order(customer, clock.now() - timedelta(hours=3))
    shop.plan([first], clock)
    latest = {
        r.customer_id
        for r in shop.ledger()
        if r.rule == "first"
        and r.status == "held_out"
        and r.due_at > clock.now() - timedelta(days=1)
    }
    assert latest == held["first"]


# --- birthday ---------------------------------------------------------------------------------

BIRTHDAY = {"trigger": "birthday", "send_at": "10:00", "max_lateness": "12h"}


def test_birthday_due_at_send_time_in_tehran(shop: Shop) -> None:
    customer = shop.customer(birthday="1990-03-20")
    shop.customer(birthday="1990-03-21")
    rule = make_rule(**BIRTHDAY, calendar="gregorian")
    assert shop.plan_at([rule], at(2026, 3, 20, 9, 59, TEHRAN)).planned == 0
    assert shop.plan_at([rule], at(2026, 3, 20, 10, 0, TEHRAN)).planned == 1
    [row] = shop.ledger()
    assert (row.customer_id, row.key, row.due_at) == (
        customer,
        "2026",
        at(2026, 3, 20, 10, 0, TEHRAN),
    )
    assert shop.plan_at([rule], at(2026, 3, 20, 18, 0, TEHRAN)).planned == 0
    assert len(shop.ledger()) == 1


def test_birthday_too_late_and_days_before(shop: Shop) -> None:
    shop.customer(birthday="1990-03-20")
    rule = make_rule(**BIRTHDAY, calendar="gregorian")
    assert shop.plan_at([rule], at(2026, 3, 20, 22, 1, TEHRAN)).planned == 0
    early = make_rule(**BIRTHDAY, name="early", calendar="gregorian", days_before=3)
    assert shop.plan_at([early], at(2026, 3, 17, 10, 5, TEHRAN)).planned == 1
    assert shop.ledger()[0].key == "2026"


def test_february_29_is_celebrated_on_the_28th_in_common_years(shop: Shop) -> None:
    leapling = shop.customer(birthday="2000-02-29")
    rule = make_rule(**BIRTHDAY, calendar="gregorian")
    assert shop.plan_at([rule], at(2027, 2, 28, 10, 30, TEHRAN)).planned == 1
    assert shop.plan_at([rule], at(2028, 2, 28, 10, 30, TEHRAN)).planned == 0
    assert shop.plan_at([rule], at(2028, 2, 29, 10, 30, TEHRAN)).planned == 1
    assert [(r.customer_id, r.key) for r in shop.ledger()] == [
        (leapling, "2027"),
        (leapling, "2028"),
    ]


def test_esfand_30_is_celebrated_on_the_29th_in_common_jalali_years(shop: Shop) -> None:
    born = shop.customer(birthday="1399/12/30", calendar="jalali")
    rule = make_rule(**BIRTHDAY, calendar="jalali")
    # 1404 is a common year: Esfand 29 1404 is 2026-03-20.
    assert shop.plan_at([rule], at(2026, 3, 20, 10, 30, TEHRAN)).planned == 1
    # 1403 is a leap year: Esfand 29 is not the birthday, Esfand 30 (2025-03-20) is.
    assert shop.plan_at([rule], at(2025, 3, 19, 10, 30, TEHRAN)).planned == 0
    assert shop.plan_at([rule], at(2025, 3, 20, 10, 30, TEHRAN)).planned == 1
    assert sorted(r.key for r in shop.ledger() if r.customer_id == born) == ["1403", "1404"]


def test_jalali_birthday_on_nowruz_in_two_gregorian_years(shop: Shop) -> None:
    customer = shop.customer(birthday="1370/01/01", calendar="jalali")
    rule = make_rule(**BIRTHDAY, calendar="customer")
    # Farvardin 1 was 20 March in 2024 and 21 March in 2025.
    assert shop.plan_at([rule], at(2024, 3, 20, 10, 30, TEHRAN)).planned == 1
    assert shop.plan_at([rule], at(2025, 3, 20, 10, 30, TEHRAN)).planned == 0
    assert shop.plan_at([rule], at(2025, 3, 21, 10, 30, TEHRAN)).planned == 1
    rows = shop.ledger()
    assert [(r.customer_id, r.key, r.due_at) for r in rows] == [
        (customer, "1403", at(2024, 3, 20, 10, 0, TEHRAN)),
        (customer, "1404", at(2025, 3, 21, 10, 0, TEHRAN)),
    ]


def test_calendar_customer_follows_each_customers_preference(shop: Shop) -> None:
    # 1990-03-21 is Farvardin 1, 1369: Gregorian fans celebrate on 21 March, Jalali on Nowruz.
    gregorian = shop.customer(birthday="1990-03-21", calendar="gregorian")
    jalali = shop.customer(birthday="1990-03-21", calendar="jalali")
    rule = make_rule(**BIRTHDAY, calendar="customer")
    shop.plan_at([rule], at(2024, 3, 20, 10, 30, TEHRAN))
    assert [(r.customer_id, r.key) for r in shop.ledger()] == [(jalali, "1403")]
    shop.plan_at([rule], at(2024, 3, 21, 10, 30, TEHRAN))
    assert [(r.customer_id, r.key) for r in shop.ledger()][1:] == [(gregorian, "2024")]


def test_birthday_at_ten_in_each_customers_own_time_zone(shop: Shop) -> None:
    tehran = shop.customer(birthday="1990-06-15", timezone="Asia/Tehran")
    new_york = shop.customer(birthday="1990-06-15", timezone="America/New_York")
    rule = make_rule(**BIRTHDAY, calendar="gregorian")
    planned_at: dict[int, datetime] = {}
    tick = at(2026, 6, 14, 12, 0)
    while tick < at(2026, 6, 16, 12, 0):
        shop.plan_at([rule], tick)
        for row in shop.ledger():
            planned_at.setdefault(row.customer_id, tick)
        tick += timedelta(minutes=15)
    due = {row.customer_id: row.due_at for row in shop.ledger()}
    assert due == {
        tehran: at(2026, 6, 15, 10, 0, TEHRAN),
        new_york: at(2026, 6, 15, 10, 0, NEW_YORK),
    }
    assert due[tehran].astimezone(UTC).hour == 6 and due[new_york].astimezone(UTC).hour == 14
    for customer, when in planned_at.items():
        assert timedelta(0) <= when - due[customer] < timedelta(minutes=15)


def test_birthday_audience_and_consent(shop: Shop) -> None:
    vip = shop.customer(birthday="1990-03-20", tags=",vip,")
    shop.customer(birthday="1990-03-20")
    silent = shop.customer(birthday="1990-03-20", tags=",vip,")
    shop.opt_out(silent)
    rule = make_rule(**BIRTHDAY, calendar="gregorian", audience={"tags_any": ["vip"]})
    shop.plan_at([rule], at(2026, 3, 20, 10, 30, TEHRAN))
    assert [r.customer_id for r in shop.ledger()] == [vip]


# --- win_back ---------------------------------------------------------------------------------

WIN_BACK = {"trigger": "win_back", "inactive_days": 90, "send_at": "11:00", "max_lateness": "2d"}


def test_win_back_due_at_send_time_after_inactive_days(shop: Shop) -> None:
    customer = shop.customer()
    last = shop.order(customer, at(2025, 12, 20, 15, 0, TEHRAN))
    rule = make_rule(**WIN_BACK)
    # 90 days later is 2026-03-20 15:00 local: the next 11:00 is on the 21st.
    assert shop.plan_at([rule], at(2026, 3, 20, 23, 0, TEHRAN)).planned == 0
    assert shop.plan_at([rule], at(2026, 3, 21, 10, 59, TEHRAN)).planned == 0
    assert shop.plan_at([rule], at(2026, 3, 21, 11, 0, TEHRAN)).planned == 1
    assert shop.plan_at([rule], at(2026, 3, 22, 11, 0, TEHRAN)).planned == 0
    [row] = shop.ledger()
    assert (row.customer_id, row.key, row.order_id, row.due_at) == (
        customer,
        str(last),
        last,
        at(2026, 3, 21, 11, 0, TEHRAN),
    )


def test_win_back_new_purchase_starts_a_new_episode(shop: Shop) -> None:
    customer = shop.customer()
    shop.order(customer, at(2025, 12, 20, 15, 0, TEHRAN))
    rule = make_rule(**WIN_BACK)
    assert shop.plan_at([rule], at(2026, 3, 21, 12, 0, TEHRAN)).planned == 1
    second = shop.order(customer, at(2026, 4, 1, 9, 0, TEHRAN))
    assert shop.plan_at([rule], at(2026, 6, 29, 12, 0, TEHRAN)).planned == 0
    assert shop.plan_at([rule], at(2026, 6, 30, 12, 0, TEHRAN)).planned == 1
    assert [r.key for r in shop.ledger()] == [shop.ledger()[0].key, str(second)]


def test_win_back_skips_long_gone_customers_and_respects_min_orders(shop: Shop) -> None:
    gone = shop.customer()
    shop.order(gone, at(2024, 3, 1, 12, 0, TEHRAN))
    once = shop.customer()
    shop.order(once, at(2025, 12, 20, 15, 0, TEHRAN))
    twice = shop.customer()
    shop.order(twice, at(2025, 6, 1, 15, 0, TEHRAN))
    shop.order(twice, at(2025, 12, 20, 16, 0, TEHRAN))
    never = shop.customer()
    rules = [make_rule(**WIN_BACK), make_rule(**WIN_BACK, name="loyal", min_orders=2)]
    shop.plan_at(rules, at(2026, 3, 21, 12, 0, TEHRAN))
    assert {(r.rule, r.customer_id) for r in shop.ledger()} == {
        ("win_back", once),
        ("win_back", twice),
        ("loyal", twice),
    }
    assert never not in {r.customer_id for r in shop.ledger()}


# --- referral_request -------------------------------------------------------------------------

REFERRAL = {"trigger": "referral_request", "after_orders": 3, "delay": "3d", "max_lateness": "2d"}


def test_referral_request_after_the_third_paid_order(shop: Shop, clock: FixedClock) -> None:
    happy = shop.customer()
    shop.order(happy, clock.now() - timedelta(days=60))
    shop.order(happy, clock.now() - timedelta(days=30))
    shop.order(happy, clock.now() - timedelta(days=4), status="cancelled")
    third = shop.order(happy, clock.now() - timedelta(days=3, hours=2))
    two = shop.customer()
    shop.order(two, clock.now() - timedelta(days=30))
    shop.order(two, clock.now() - timedelta(days=3, hours=2))
    old_hand = shop.customer()
    for days in (300, 200, 100):
        shop.order(old_hand, clock.now() - timedelta(days=days))
    shop.order(old_hand, clock.now() - timedelta(days=3, hours=2))
    rule = make_rule(**REFERRAL)
    assert shop.plan([rule], clock).planned == 1
    [row] = shop.ledger()
    assert (row.customer_id, row.key, row.order_id) == (happy, str(third), third)
    assert row.due_at == clock.now() - timedelta(hours=2)
    assert shop.plan([rule], clock).planned == 0


def test_referral_request_not_yet_due_and_min_total_spent(shop: Shop, clock: FixedClock) -> None:
    customer = shop.customer()
    for days in (60, 30, 2):
        shop.order(customer, clock.now() - timedelta(days=days), total="100")
    rich = make_rule(**REFERRAL, name="rich", min_total_spent=1000)
    rule = make_rule(**REFERRAL)
    assert shop.plan([rule, rich], clock).planned == 0
    clock.advance(timedelta(days=1))
    assert shop.plan([rule, rich], clock).planned == 1
    assert [r.rule for r in shop.ledger()] == ["referral_request"]


# --- whole pass -------------------------------------------------------------------------------


def test_first_run_over_two_years_of_history_plans_only_current_occurrences(
    shop: Shop, clock: FixedClock
) -> None:
    start = clock.now() - timedelta(days=730)
    for n in range(40):
        customer = shop.customer(birthday=(date(1980, 1, 1) + timedelta(days=n * 9)).isoformat())
        for k in range(4):
            shop.order(customer, start + timedelta(days=n * 3 + k * 150))
    rules = [
        make_rule(**THANKS),
        make_rule(**BIRTHDAY, calendar="gregorian"),
        make_rule(**WIN_BACK),
        make_rule(**REFERRAL),
    ]
    shop.plan(rules, clock)
    for row in shop.ledger():
        assert clock.now() - timedelta(days=2) <= row.due_at <= clock.now()


def test_count_due_today_excludes_planned(shop: Shop, clock: FixedClock) -> None:
    customer = shop.customer()
    shop.order(customer, clock.now() - timedelta(hours=3))
    shop.order(shop.customer(), clock.now() + timedelta(hours=10))
    rule = make_rule(**THANKS)
    start, end = day_bounds(clock, "Asia/Tehran")
    with shop.sessions() as session:
        assert count_due(session, rule, start, end, shop.settings) == 2
    shop.plan([rule], clock)
    with shop.sessions() as session:
        assert count_due(session, rule, start, end, shop.settings) == 1


def test_unplanned_is_what_planning_will_queue_for_those_phones(shop: Shop) -> None:
    """The dispatcher's look ahead: due later (or due and not planned yet), not held out."""
    now = at(2026, 3, 20, 9, 0, TEHRAN)
    until = at(2026, 3, 21, 0, 0, TEHRAN)
    thanks = make_rule(**THANKS, holdout_percent=50)
    birthday = make_rule(**BIRTHDAY, calendar="gregorian", priority=80)
    customers = [shop.customer(birthday="1990-03-20") for _ in range(12)]
    for customer in customers:
        shop.order(customer, at(2026, 3, 20, 6, 30, TEHRAN))  # thank-you due 08:30
    shop.plan_at([birthday], at(2026, 3, 20, 10, 0, TEHRAN))
    planned = customers[0]
    with shop.sessions.begin() as session:
        session.query(Message).filter(Message.customer_id != planned).delete()
        phones = {c.id: c.phone for c in session.scalars(select(Customer))}
    asked = {phones[c] for c in customers[:10]}  # two customers are not in the batch
    zones = {"Asia/Tehran": TEHRAN}
    with shop.sessions() as session:
        found = unplanned(session, [thanks, birthday], asked, zones, now, until)
    birthdays = {(u.phone, u.due_at, u.expires_at) for u in found if u.rule == "birthday"}
    ten = at(2026, 3, 20, 10, 0, TEHRAN)
    assert birthdays == {(phones[c], ten, ten + timedelta(hours=12)) for c in customers[1:10]}
    thanked = {u.phone for u in found if u.rule == "post_purchase"}
    assert thanked == {phones[c] for c in customers[:10] if not is_held_out(thanks, c)}
    assert 0 < len(thanked) < 10
    assert {(u.priority, u.timezone) for u in found} == {(50, "Asia/Tehran"), (80, "Asia/Tehran")}
    with shop.sessions() as session:
        assert unplanned(session, [thanks, birthday], set(), zones, now, until) == []


def test_racing_planners_create_each_row_once(shop: Shop) -> None:
    customers = [shop.customer(birthday="1990-03-20") for _ in range(30)]
    rules = [
        make_rule(**THANKS, holdout_percent=20),
        make_rule(**BIRTHDAY, calendar="gregorian"),
    ]
    when = at(2026, 3, 20, 10, 30, TEHRAN)
    for customer in customers:
        shop.order(customer, when - timedelta(hours=3))
    barrier = threading.Barrier(4)
    reports: list[PlanReport] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            reports.append(shop.plan_at(rules, when))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rows = shop.ledger()
    keys = [(r.rule, r.customer_id, r.key) for r in rows]
    assert len(keys) == len(set(keys)) == 60
    assert sum(r.planned + r.held_out for report in reports for r in report.rules.values()) == 60


def test_each_row_keeps_the_segment_its_customer_was_in_when_planned(
    shop: Shop, clock: FixedClock
) -> None:
    loyal, unscored = shop.customer(), shop.customer()
    with shop.sessions.begin() as session:
        put_segment(session, loyal, "loyal")
    for customer in (loyal, unscored):
        shop.order(customer, clock.now() - timedelta(hours=3))
    shop.plan([make_rule(**THANKS)], clock)
    with shop.sessions.begin() as session:
        put_segment(session, loyal, "at_risk")  # moved after planning
        put_segment(session, unscored, "new")
    shop.plan([make_rule(**THANKS)], clock)  # plans nothing again
    with shop.sessions() as session:
        kept = dict(session.execute(select(Message.customer_id, Message.customer_segment)).all())
    assert kept == {loyal: "loyal", unscored: "none"}


def test_planning_racing_a_rescoring_records_each_row_once_with_a_real_segment(
    shop: Shop, clock: FixedClock
) -> None:
    """The daemon plans while an import's rescoring moves everybody out of "none": each row
    is planned once, with the segment before or after the rescoring, never a missing one."""
    customers = [shop.customer() for _ in range(30)]
    for customer in customers:
        shop.order(customer, clock.now() - timedelta(hours=3))
    with shop.sessions.begin() as session:
        refresh_inputs(session, customers, "IRT")
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def planning() -> None:
        try:
            barrier.wait(timeout=30)
            shop.plan([make_rule(**THANKS)], clock)
        except BaseException as exc:
            errors.append(exc)

    def rescoring() -> None:
        try:
            with shop.sessions.begin() as session:
                barrier.wait(timeout=30)
                rescore(session, SegmentMap.standard(), clock.now())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=planning) for _ in range(2)]
    threads.append(threading.Thread(target=rescoring))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with shop.sessions() as session:
        rows = session.execute(select(Message.customer_id, Message.customer_segment)).all()
        now_in = dict(session.execute(select(Customer.id, Customer.segment)).all())
    assert sorted(customer for customer, _ in rows) == sorted(customers)
    assert all(segment in ("none", now_in[customer]) for customer, segment in rows)
    assert all(now_in[customer] != "none" for customer in customers)


# --- one rule's failure stays its own ---------------------------------------------------------


def unchecked(rule: Rule, **fields: Any) -> Rule:
    """`rule` with values the rule file checks would refuse: what the planner must survive
    if anything slips through (a check forgotten, a database that refuses more)."""
    return rule.model_copy(update=fields)


def hostile_rules(dialect: str) -> dict[str, tuple[Rule, bool]]:
    """The rules that failed every pass in issue 12, and whether this database fails them."""
    where = Audience.model_construct(
        where=[Condition.model_construct(field="orders_count", op=">", value="abc")]
    )
    return {
        "priority beyond 64 bits": (unchecked(make_rule(**THANKS, name="p"), priority=2**70), True),
        "inactive_days 999999999999": (
            unchecked(make_rule(**WIN_BACK, name="w"), inactive_days=999_999_999_999),
            True,
        ),
        "delay 999999999d": (
            unchecked(make_rule(**THANKS, name="d"), delay="999999999d"),
            True,
        ),
        # SQLite compares a number with text; PostgreSQL has no `integer > text`.
        "orders_count > 'abc'": (
            unchecked(make_rule(**THANKS, name="o"), audience=where),
            dialect == "postgresql",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "priority beyond 64 bits",
        "inactive_days 999999999999",
        "delay 999999999d",
        "orders_count > 'abc'",
    ],
)
def test_a_rule_failing_at_plan_time_leaves_the_others_planned(
    shop: Shop, clock: FixedClock, db_url: str, case: str
) -> None:
    customer = shop.customer()
    shop.order(customer, clock.now() - timedelta(hours=3))
    bad, fails = hostile_rules(db_url.split(":")[0].split("+")[0])[case]
    thanks = make_rule(**THANKS)
    report = shop.plan([bad, thanks, make_rule(**THANKS, name="after")], clock)
    assert report.rules["post_purchase"].planned == report.rules["after"].planned == 1
    planned = {r.rule for r in shop.ledger()}
    assert {"post_purchase", "after"} <= planned
    if fails:
        error = report.rules[bad.name].error
        assert error and "\n" not in error and len(error) <= 300
        assert report.errors == {bad.name: error}
        assert report.rules[bad.name].planned == 0 and bad.name not in planned
    else:
        assert report.errors == {}


def test_a_failing_rule_is_one_short_line_not_its_statement(shop: Shop, clock: FixedClock) -> None:
    many = Audience.model_construct(
        where=[
            Condition.model_construct(
                field="external_id", op="in", value=[f"x{n}" for n in range(5000)]
            )
        ]
    )
    bad = unchecked(make_rule(**THANKS, name="bad"), priority=2**70, audience=many)
    shop.order(shop.customer(), clock.now() - timedelta(hours=3))
    error = shop.plan([bad], clock).errors["bad"]
    assert len(error) <= 300 and "\n" not in error
    assert "x4999" not in error and "INSERT" not in error.upper()


def test_a_database_that_refuses_writes_fails_the_pass_not_the_rules(
    shop: Shop, clock: FixedClock, db_url: str
) -> None:
    shop.order(shop.customer(), clock.now() - timedelta(hours=3))
    read_only = (
        "PRAGMA query_only = ON" if db_url.startswith("sqlite") else "SET TRANSACTION READ ONLY"
    )
    engine = create_engine_for(db_url)  # its own connections: read-only ones are not reused
    try:
        with Session(engine) as session:
            session.execute(text(read_only))
            with pytest.raises(DBAPIError):
                plan(session, [make_rule(**THANKS)], clock, shop.settings)
    finally:
        engine.dispose()
    assert shop.ledger() == []


def test_a_year_of_lateness_over_many_zones_plans_in_several_statements(shop: Shop) -> None:
    zones = ["Asia/Tehran", "America/New_York", "Europe/Berlin", "Asia/Tokyo"]
    when = at(2026, 3, 20, 10, 30, TEHRAN)
    born, lapsed = [], []
    for n, zone in enumerate(zones):
        for calendar, shift in (("gregorian", 0), ("jalali", 7)):
            birthday = date(1990, 1, 1) + timedelta(days=40 * n + shift)
            born.append(
                shop.customer(birthday=birthday.isoformat(), timezone=zone, calendar=calendar)
            )
        lapsed.append(born[-1])
        shop.order(born[-1], when - timedelta(days=200 + n))
    birthdays = make_rule(**{**BIRTHDAY, "max_lateness": "366d"}, calendar="customer")
    win_back = make_rule(**{**WIN_BACK, "max_lateness": "366d", "inactive_days": 30})
    report = shop.plan_at([birthdays, win_back], when)
    assert report.errors == {}
    rows = shop.ledger()
    # Every birthday of the past year is planned once, under the year it fell in.
    assert sorted(r.customer_id for r in rows if r.rule == "birthday") == sorted(born)
    assert all(when - timedelta(days=366) <= r.due_at <= when for r in rows)
    assert sorted(r.customer_id for r in rows if r.rule == "win_back") == lapsed


# --- the customers' time zones ----------------------------------------------------------------


def test_customer_zones_follow_imports_updates_and_merges(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    """Read through the index on every tick, never cached: whatever wrote the customers
    (a CSV import, the loader behind sync and ingest, a guest merged away), the list is exact."""
    source = tmp_path / "customers.csv"
    source.write_text(
        "id,phone,timezone\n"
        "a,09121111111,Asia/Tehran\n"
        "b,09122222222,Europe/Berlin\n"
        "c,09123333333,Asia/Tehran\n",
        encoding="utf-8",
    )
    import_csv(sessions, "customers", source, settings.customers)
    with sessions() as session:
        assert set(customer_zones(session, settings)) == {"Asia/Tehran", "Europe/Berlin"}
    now = datetime(2026, 3, 20, tzinfo=UTC)
    with sessions.begin() as session:  # a sync or an ingest batch moves b, adds a guest
        load_customers(
            session,
            [
                {"external_id": "b", "phone": "09122222222", "timezone": "America/New_York"},
                {"external_id": "guest:+989124444444", "phone": "09124444444",
                 "timezone": "Asia/Dubai"},
            ],
            settings.customers,
            now=now,
        )  # fmt: skip
    with sessions() as session:
        zones = customer_zones(session, settings)
    assert set(zones) == {"America/New_York", "Asia/Dubai", "Asia/Tehran"}
    assert zones["America/New_York"] == ZoneInfo("America/New_York")
    with sessions.begin() as session:  # the guest registers: merged into d, a Tehran customer
        load_customers(
            session,
            [{"external_id": "d", "phone": "09124444444", "timezone": "Asia/Tehran"}],
            settings.customers,
            now=now,
        )
        session.execute(
            Customer.__table__.insert().values(
                external_id="e", timezone="Mars/Olympus", created_at=now, updated_at=now
            )
        )
    with sessions() as session:
        zones = customer_zones(session, settings)
        expected = set(session.scalars(select(Customer.timezone).distinct()))
    assert set(zones) == expected == {"America/New_York", "Asia/Tehran", "Mars/Olympus"}
    assert zones["Mars/Olympus"] == ZoneInfo(settings.customers.timezone)  # not a zone


def test_customer_zones_come_from_the_index(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'plan.db'}")
    upgrade(engine)
    with engine.connect() as connection:
        sql = str(_distinct_zones().compile(engine))
        plan = " ".join(row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    engine.dispose()
    assert plan.count("USING COVERING INDEX ix_customers_timezone") == 2  # first, and each next
