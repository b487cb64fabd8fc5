"""The personal_date trigger on SQLite and PostgreSQL, with the injected clock: a child's
birthday and a wedding anniversary in either calendar, Esfand 30 in a common year, round
first-order anniversaries, `days_before`, once per year, and `{{ years }}` in the text."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from conftest import Project
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from test_planner import TEHRAN, Shop, at, make_rule

from campaigner.calendars import parse_date
from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.db.models import Customer, CustomerDate
from campaigner.planner import PlanReport

ANNIVERSARY = {"trigger": "personal_date", "date": "anniversary", "send_at": "10:00"}


class DatedShop(Shop):
    def own_date(self, customer_id: int, name: str, written: str) -> None:
        calendar = "jalali" if int(written[:4]) < 1700 else "gregorian"
        with self.sessions.begin() as session:
            session.add(
                CustomerDate(
                    customer_id=customer_id,
                    name=name,
                    date=parse_date(written),
                    calendar=calendar,
                )
            )


@pytest.fixture
def shop(sessions: sessionmaker[Session], settings: Settings) -> DatedShop:
    return DatedShop(sessions, settings)


def test_a_jalali_anniversary_on_its_day_once_a_year(shop: DatedShop) -> None:
    married = shop.customer()
    shop.own_date(married, "anniversary", "1395/04/15")  # 2016-07-05
    shop.own_date(shop.customer(), "child_birthday", "1395/04/15")
    rule = make_rule(**ANNIVERSARY, name="anniversary")
    # 15 Tir 1405 is 2026-07-06.
    assert shop.plan_at([rule], at(2026, 7, 5, 10, 30, TEHRAN)).planned == 0
    assert shop.plan_at([rule], at(2026, 7, 6, 10, 0, TEHRAN)).planned == 1
    assert shop.plan_at([rule], at(2026, 7, 6, 21, 0, TEHRAN)).planned == 0
    assert [(r.customer_id, r.key, r.due_at) for r in shop.ledger()] == [
        (married, "1405", at(2026, 7, 6, 10, 0, TEHRAN))
    ]


def test_calendar_customer_celebrates_each_date_in_the_calendar_it_was_written_in(
    shop: DatedShop,
) -> None:
    jalali = shop.customer()
    shop.own_date(jalali, "child_birthday", "1398/01/01")  # 2019-03-21, Nowruz
    gregorian = shop.customer()
    shop.own_date(gregorian, "child_birthday", "2019-03-21")
    rule = make_rule(**ANNIVERSARY | {"date": "child_birthday"}, name="kids")
    shop.plan_at([rule], at(2024, 3, 20, 10, 30, TEHRAN))  # Nowruz 1403
    shop.plan_at([rule], at(2024, 3, 21, 10, 30, TEHRAN))
    assert [(r.customer_id, r.key) for r in shop.ledger()] == [
        (jalali, "1403"),
        (gregorian, "2024"),
    ]
    forced = make_rule(**ANNIVERSARY | {"date": "child_birthday", "calendar": "gregorian"})
    shop.plan_at([forced], at(2025, 3, 21, 10, 30, TEHRAN))
    assert sorted(r.customer_id for r in shop.ledger() if r.rule == "personal_date") == [
        jalali,
        gregorian,
    ]


def test_esfand_30_in_a_common_year_is_celebrated_on_esfand_29(shop: DatedShop) -> None:
    customer = shop.customer()
    shop.own_date(customer, "anniversary", "1399/12/30")  # 1399 is a leap year
    rule = make_rule(**ANNIVERSARY, calendar="jalali")
    # 1404 is a common year: Esfand 29 1404 is 2026-03-20.
    assert shop.plan_at([rule], at(2026, 3, 20, 10, 30, TEHRAN)).planned == 1
    # 1403 is a leap year: Esfand 30 (2025-03-20) is the day, not Esfand 29.
    assert shop.plan_at([rule], at(2025, 3, 19, 10, 30, TEHRAN)).planned == 0
    assert shop.plan_at([rule], at(2025, 3, 20, 10, 30, TEHRAN)).planned == 1
    assert sorted(r.key for r in shop.ledger()) == ["1403", "1404"]


def test_days_before_and_nothing_before_the_first_year(shop: DatedShop) -> None:
    customer = shop.customer()
    shop.own_date(customer, "child_birthday", "2026-05-10")
    rule = make_rule(**ANNIVERSARY | {"date": "child_birthday"}, calendar="gregorian")
    assert shop.plan_at([rule], at(2026, 5, 10, 10, 30, TEHRAN)).planned == 0
    early = make_rule(**ANNIVERSARY | {"date": "child_birthday"}, name="early", days_before=3)
    assert shop.plan_at([early], at(2027, 5, 7, 10, 30, TEHRAN)).planned == 1
    assert [(r.rule, r.key) for r in shop.ledger()] == [("early", "2027")]


def test_first_order_anniversaries_narrowed_to_round_years(shop: DatedShop) -> None:
    by_years = {}
    for years in (1, 2, 5):
        customer = shop.customer(calendar="gregorian")
        shop.order(customer, at(2026 - years, 4, 2, 15, 0, TEHRAN))
        shop.order(customer, at(2026 - years, 9, 1, 15, 0, TEHRAN))  # later orders change nothing
        by_years[years] = customer
    late_evening = shop.customer(calendar="gregorian")
    # 23:30 on 2 April in Tehran is still 2 April there, though 20:00 UTC.
    shop.order(late_evening, at(2021, 4, 2, 23, 30, TEHRAN))
    rule = make_rule(trigger="personal_date", name="with_us", date="first_order", years=[1, 5, 10])
    shop.plan_at([rule], at(2026, 4, 2, 10, 30, TEHRAN))
    assert sorted((r.customer_id, r.key) for r in shop.ledger()) == [
        (by_years[1], "2026"),
        (by_years[5], "2026"),
        (late_evening, "2026"),
    ]


def test_consent_and_opt_out_apply_to_personal_dates(shop: DatedShop) -> None:
    kept = shop.customer()
    quiet = shop.customer(consent=False)
    stopped = shop.customer()
    shop.opt_out(stopped)
    for customer in (kept, quiet, stopped):
        shop.own_date(customer, "anniversary", "2016-07-06")
    rule = make_rule(**ANNIVERSARY, calendar="gregorian")
    shop.plan_at([rule], at(2026, 7, 6, 10, 30, TEHRAN))
    assert [r.customer_id for r in shop.ledger()] == [kept]


RULE_FILE = """trigger = "personal_date"
template = "anniversary.j2"
date = "anniversary"
occasion = "سالگرد ازدواج"
years = [1, 5, 10]
send_at = "10:00"
"""


def test_years_and_the_date_in_the_text_once_across_restarts(
    project: Project, clock: FixedClock
) -> None:
    (project.settings.paths.rules / "anniversary.toml").write_text(RULE_FILE, encoding="utf-8")
    project.write_template(
        "anniversary.j2",
        "{{ first_name }}، {{ years | fa_digits }} سال از {{ occasion.name }} شما گذشت "
        "({{ occasion.date | jalali }})",
    )
    clock.set(at(2026, 7, 6, 10, 15, TEHRAN))
    project.paid_order("مریم")
    with project.sessions.begin() as session:
        customer = session.scalars(select(Customer)).one()
        session.add(
            CustomerDate(
                customer_id=customer.id,
                name="anniversary",
                date=date(2021, 7, 6),  # 15 Tir 1400
                calendar="jalali",
            )
        )
    first = project.runtime()
    try:
        texts = project.send_due(first)
    finally:
        first.close()
    assert texts == ["Thanks مریم", "مریم، ۵ سال از سالگرد ازدواج شما گذشت (۱۴۰۵/۰۴/۱۵)\nلغو۱۱"]
    clock.advance(timedelta(hours=2))
    again = project.runtime()
    try:
        assert project.send_due(again) == []
    finally:
        again.close()


def test_racing_planners_create_each_greeting_once(shop: DatedShop) -> None:
    customers = [shop.customer() for _ in range(20)]
    for customer in customers:
        shop.own_date(customer, "anniversary", "2016-03-21")
    rules = [
        make_rule(trigger="occasion", name="nowruz", date="jalali:01-01", holdout_percent=20),
        make_rule(**ANNIVERSARY, calendar="gregorian"),
    ]
    when = at(2026, 3, 21, 10, 30, TEHRAN)  # Nowruz 1405, and ten years married
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
    keys = [(r.rule, r.customer_id, r.key) for r in shop.ledger()]
    assert len(keys) == len(set(keys)) == 40
    assert {key for _, _, key in keys} == {"2026-03-21", "2026"}
    assert sum(r.planned + r.held_out for report in reports for r in report.rules.values()) == 40
