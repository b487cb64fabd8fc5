"""The occasion trigger on SQLite and PostgreSQL, with the injected clock: Nowruz on 20 and
on 21 March, Yalda, Black Friday, a Hijri Eid with and without the shop's correction, each
customer's own zone, once per occasion, consent and opt-out."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from conftest import Project
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from test_planner import NEW_YORK, TEHRAN, Shop, at, make_rule

from campaigner.clock import FixedClock
from campaigner.config import OccasionSettings, Settings
from campaigner.db.models import Customer, Message, OptOut

NOWRUZ = {"trigger": "occasion", "name": "nowruz", "date": "jalali:01-01", "send_at": "10:00"}


@pytest.fixture
def shop(sessions: sessionmaker[Session], settings: Settings) -> Shop:
    return Shop(sessions, settings)


def test_nowruz_on_20_march_2024_and_on_21_march_2025(shop: Shop) -> None:
    customer = shop.customer()
    rule = make_rule(**NOWRUZ)
    assert shop.plan_at([rule], at(2024, 3, 20, 9, 59, TEHRAN)).planned == 0
    assert shop.plan_at([rule], at(2024, 3, 20, 10, 0, TEHRAN)).planned == 1
    assert shop.plan_at([rule], at(2025, 3, 20, 10, 30, TEHRAN)).planned == 0
    assert shop.plan_at([rule], at(2025, 3, 21, 10, 30, TEHRAN)).planned == 1
    assert [(r.customer_id, r.key, r.due_at) for r in shop.ledger()] == [
        (customer, "2024-03-20", at(2024, 3, 20, 10, 0, TEHRAN)),
        (customer, "2025-03-21", at(2025, 3, 21, 10, 0, TEHRAN)),
    ]


def test_nowruz_is_planned_once_however_often_planning_runs(shop: Shop) -> None:
    shop.customer()
    rule = make_rule(**NOWRUZ)
    for minutes in range(0, 24 * 60, 15):
        shop.plan_at([rule], at(2025, 3, 21, 0, 0, TEHRAN) + timedelta(minutes=minutes))
    assert [r.key for r in shop.ledger()] == ["2025-03-21"]


def test_yalda_a_day_before_and_too_late_is_never(shop: Shop) -> None:
    shop.customer()
    rule = make_rule(
        trigger="occasion", name="yalda", date="jalali:09-30", days_before=1, send_at="18:00"
    )
    # Yalda 1405 is 2026-12-21: the greeting goes on the 20th at 18:00, within 12 hours.
    assert shop.plan_at([rule], at(2026, 12, 21, 18, 0, TEHRAN)).planned == 0
    assert shop.plan_at([rule], at(2026, 12, 21, 6, 1, TEHRAN)).planned == 0
    assert shop.plan_at([rule], at(2026, 12, 20, 18, 5, TEHRAN)).planned == 1
    assert [r.key for r in shop.ledger()] == ["2026-12-21"]


def test_black_friday_on_the_fourth_friday(shop: Shop) -> None:
    shop.customer()
    rule = make_rule(trigger="occasion", name="black_friday", date="gregorian:11-fri-4")
    assert shop.plan_at([rule], at(2026, 11, 20, 10, 30, TEHRAN)).planned == 0
    assert shop.plan_at([rule], at(2026, 11, 27, 10, 30, TEHRAN)).planned == 1
    last = make_rule(trigger="occasion", name="last_friday", date="gregorian:11-fri-last")
    assert shop.plan_at([last], at(2024, 11, 22, 10, 30, TEHRAN)).planned == 0
    assert shop.plan_at([last], at(2024, 11, 29, 10, 30, TEHRAN)).planned == 1


def test_hijri_eid_without_and_with_the_shops_correction(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    rule = make_rule(trigger="occasion", name="eid", date="hijri:10-01")
    plain = Shop(sessions, settings)
    plain.customer()
    # Umm al-Qura: 1 Shawwal 1448 is 2027-03-09.
    assert plain.plan_at([rule], at(2027, 3, 9, 10, 30, TEHRAN)).planned == 1
    corrected = Shop(
        sessions,
        settings.model_copy(
            update={"occasions": OccasionSettings(overrides={"hijri:10-01": {2027: "2027-03-10"}})}
        ),
    )
    other = make_rule(trigger="occasion", name="eid_iran", date="hijri:10-01")
    assert corrected.plan_at([other], at(2027, 3, 9, 10, 30, TEHRAN)).planned == 0
    assert corrected.plan_at([other], at(2027, 3, 10, 10, 30, TEHRAN)).planned == 1
    assert [(r.rule, r.key) for r in plain.ledger()] == [
        ("eid", "2027-03-09"),
        ("eid_iran", "2027-03-10"),
    ]


def test_each_customer_at_ten_in_their_own_zone_with_one_key(shop: Shop) -> None:
    tehran = shop.customer(timezone="Asia/Tehran")
    new_york = shop.customer(timezone="America/New_York")
    rule = make_rule(trigger="occasion", name="christmas", date="gregorian:12-25")
    shop.plan_at([rule], at(2026, 12, 25, 10, 30, TEHRAN))
    assert [r.customer_id for r in shop.ledger()] == [tehran]
    shop.plan_at([rule], at(2026, 12, 25, 10, 30, NEW_YORK))
    assert {(r.customer_id, r.key, r.due_at) for r in shop.ledger()} == {
        (tehran, "2026-12-25", at(2026, 12, 25, 10, 0, TEHRAN)),
        (new_york, "2026-12-25", at(2026, 12, 25, 10, 0, NEW_YORK)),
    }


def test_consent_opt_out_invalid_phone_and_audience_still_apply(shop: Shop) -> None:
    welcome = shop.customer(tags=",vip,")
    shop.customer(tags=",vip,", consent=False)
    stopped = shop.customer(tags=",vip,")
    shop.opt_out(stopped)
    shop.customer(tags=",vip,", phone_invalid=True)
    shop.customer()
    rule = make_rule(**NOWRUZ, audience={"tags_any": ["vip"]})
    shop.plan_at([rule], at(2026, 3, 21, 10, 30, TEHRAN))
    assert [r.customer_id for r in shop.ledger()] == [welcome]


def test_a_one_off_day_and_no_history_blast(shop: Shop) -> None:
    shop.customer()
    rule = make_rule(trigger="occasion", name="opening", date="2027-03-20")
    assert shop.plan_at([rule], at(2027, 3, 21, 10, 30, TEHRAN)).planned == 0
    assert shop.plan_at([rule], at(2027, 3, 20, 10, 30, TEHRAN)).planned == 1
    assert shop.plan_at([rule], at(2028, 3, 20, 10, 30, TEHRAN)).planned == 0
    assert [r.key for r in shop.ledger()] == [date(2027, 3, 20).isoformat()]


NOWRUZ_FILE = """trigger = "occasion"
template = "nowruz.j2"
date = "jalali:01-01"
occasion = "نوروز"
send_at = "10:00"
"""


def nowruz_project(project: Project, clock: FixedClock) -> None:
    (project.settings.paths.rules / "nowruz.toml").write_text(NOWRUZ_FILE, encoding="utf-8")
    project.write_template(
        "nowruz.j2", "{{ first_name }}، {{ occasion.name }} {{ occasion.date | jalali }} مبارک"
    )
    clock.set(at(2026, 3, 21, 10, 15, TEHRAN))


def test_the_greeting_names_the_occasion_and_its_jalali_date_once_across_restarts(
    project: Project, clock: FixedClock
) -> None:
    nowruz_project(project, clock)
    project.paid_order("سارا")
    first = project.runtime()
    try:
        texts = project.send_due(first)
    finally:
        first.close()
    assert texts == ["Thanks سارا", "سارا، نوروز ۱۴۰۵/۰۱/۰۱ مبارک\nلغو۱۱"]
    clock.advance(timedelta(hours=1))
    again = project.runtime()
    try:
        assert [text for text in project.send_due(again) if "نوروز" in text] == []
    finally:
        again.close()


def test_an_opt_out_after_planning_stops_the_greeting(project: Project, clock: FixedClock) -> None:
    nowruz_project(project, clock)
    project.paid_order("Sara")
    runtime = project.runtime()
    try:
        runtime.plan()
        with project.sessions.begin() as session:
            phone = session.scalars(select(Customer.phone)).one()
            session.add(OptOut(phone=phone))
        runtime.drain()
    finally:
        runtime.close()
    with project.sessions() as session:
        greeting = session.scalars(select(Message).where(Message.rule == "nowruz")).one()
    assert (greeting.status, greeting.reason) == ("skipped", "opted_out")
    assert not [m for m in project.gateway.sent if "Sara" in m.text and "نوروز" in m.text]


def test_a_greeting_due_before_the_send_window_waits_for_the_morning(
    project: Project, clock: FixedClock
) -> None:
    early = NOWRUZ_FILE.replace('send_at = "10:00"', 'send_at = "07:00"')
    (project.settings.paths.rules / "nowruz.toml").write_text(early, encoding="utf-8")
    project.write_template("nowruz.j2", "{{ occasion.name }} مبارک")
    clock.set(at(2026, 3, 21, 7, 5, TEHRAN))
    with project.sessions.begin() as session:
        session.add(Customer(external_id="c1", phone="+989120000001", marketing_consent=True))
    runtime = project.runtime()
    try:
        assert project.send_due(runtime) == []  # 07:05: before the 09:00-20:00 window
        clock.set(at(2026, 3, 21, 9, 0, TEHRAN))
        assert project.send_due(runtime) == ["نوروز مبارک\nلغو۱۱"]
    finally:
        runtime.close()
