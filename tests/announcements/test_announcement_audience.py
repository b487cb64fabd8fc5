"""Who an announcement reaches: consent, opt-outs, the send window and caps as for every
rule, and what its audience adds (cities, last order dates, total spent, a customers file)."""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from announcement_shop import add_customers, ledger, rule, sent_to, utc, write_announcement
from conftest import CaptureGateway
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from campaigner.announcements.listing import read_listing
from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.db.models import Customer, Message, OptOut
from campaigner.planner import plan
from campaigner.rules.loader import load_rules
from campaigner.runtime import Runtime

BEFORE = utc(2026, 12, 19, 8)


def queued_ids(sessions: sessionmaker[Session], settings: Settings, **fields: object) -> set[int]:
    with sessions.begin() as session:
        plan(
            session,
            [rule(at="2026-12-20T10:00", approved=True, **fields)],
            FixedClock(BEFORE),
            settings,
        )
    return {row.customer_id for row in ledger(sessions)}


def test_cities_last_order_dates_and_total_spent(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    ids = add_customers(sessions, 4, zones=("Asia/Tehran",))
    with sessions.begin() as session:
        for n, (city, last, spent) in enumerate(
            [
                ("Shiraz", utc(2026, 1, 10), 500),
                ("شیراز", utc(2026, 9, 1), 900),
                (" shiraz", utc(2025, 5, 1), 50),
                ("Tehran", utc(2026, 1, 10), 900),
            ]
        ):
            session.execute(
                update(Customer)
                .where(Customer.id == ids[n])
                .values(city=city, last_order_at=last, total_spent=Decimal(spent))
            )
    audience = {
        "cities": ["Shiraz", "شیراز"],
        "last_order_after": "2026-01-01",
        "last_order_before": "2026-10-01",
        "min_total_spent": 100,
    }
    assert queued_ids(sessions, settings, audience=audience) == {ids[0], ids[1]}


def test_no_consent_and_opted_out_are_never_queued_nor_sent(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    add_customers(sessions, 3, zones=("Asia/Tehran",))
    with sessions.begin() as session:
        session.execute(
            update(Customer).where(Customer.external_id == "c0").values(marketing_consent=False)
        )
    write_announcement(settings, 'at = "2026-12-20T10:00"\napproved = true\n')
    clock = FixedClock(BEFORE)
    gateway = CaptureGateway()
    runtime = Runtime.build(settings, clock=clock, sessions=sessions, gateway=gateway)
    runtime.plan()
    assert len(ledger(sessions)) == 2  # c0 gave no consent
    with sessions.begin() as session:  # c1 says stop after it was queued
        session.add(OptOut(phone="+989120000001", source="sms"))
    clock.set(utc(2026, 12, 20, 6, 30))
    runtime.drain()
    assert sent_to(gateway) == ["+989120000002"]
    assert {(r.phone, r.status, r.reason) for r in ledger(sessions)} >= {
        ("+989120000001", "skipped", "opted_out")
    }
    runtime.close()


def test_the_send_window_and_caps_still_apply(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    """At 07:00 local it waits for the window (09:00); a phone that had today's message
    already is not sent a second (max_per_day = 1)."""
    ids = add_customers(sessions, 2, zones=("Asia/Tehran",))
    write_announcement(settings, 'at = "2026-12-20T07:00"\napproved = true\n')
    clock = FixedClock(BEFORE)
    gateway = CaptureGateway()
    runtime = Runtime.build(settings, clock=clock, sessions=sessions, gateway=gateway)
    runtime.plan()
    with sessions.begin() as session:  # c0 got a message at 08:00 today from another rule
        session.add(
            Message(
                rule="thank_you",
                customer_id=ids[0],
                occurrence_key="o1",
                status="sent",
                phone="+989120000000",
                due_at=utc(2026, 12, 20, 4, 30),
                scheduled_for=utc(2026, 12, 20, 4, 30),
                sent_at=utc(2026, 12, 20, 4, 30),
            )
        )
    clock.set(utc(2026, 12, 20, 3, 30))  # 07:00 in Tehran
    runtime.drain()
    assert gateway.sent == []
    clock.set(utc(2026, 12, 20, 5, 30))  # 09:00 in Tehran
    runtime.drain()
    assert sent_to(gateway) == ["+989120000001"]
    runtime.close()


def test_a_customers_file_in_any_written_form_and_its_bad_lines_named(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(
        "شناسه,نام\nc1,Ali\n۰۹۱۲ ۱۲۳ ۴۵۶۷\n+98 912 000 0002\n00989120000003\n\n0912-12\nمشتری۱۲\n",
        encoding="utf-8",
    )
    listing = read_listing(path, "IR")
    assert listing.phones == {"+989121234567", "+989120000002", "+989120000003"}
    assert {"c1", "مشتری۱۲", "مشتری12"} <= listing.ids
    assert listing.problems == [
        "list.csv line 7: '0912-12' looks like a phone number but is not a valid one"
    ]


def test_rules_check_names_the_customers_file_and_its_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "sale.toml").write_text(
        'trigger = "announcement"\ntemplate = "x"\nat = "2026-12-20T10:00"\n'
        '[audience]\ncustomers_file = "list.csv"\n',
        encoding="utf-8",
    )
    (rules / "list.csv").write_text("c1\n+98 912\n", encoding="utf-8")
    (rules / "gone.toml").write_text(
        'trigger = "announcement"\ntemplate = "x"\nat = "2026-12-20T10:00"\n'
        '[audience]\ncustomers_file = "missing.csv"\n',
        encoding="utf-8",
    )
    loaded = load_rules(rules)
    assert [str(p) for p in loaded.problems] == [
        f"{rules}/gone.toml: rule 'gone': audience.customers_file: "
        f"{rules}/missing.csv: file not found",
        f"{rules}/sale.toml: rule 'sale': audience.customers_file: list.csv line 2: "
        "'+98 912' looks like a phone number but is not a valid one",
    ]
    assert loaded.rules == {}


def test_a_customers_file_outside_the_rules_folder_is_refused(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "sale.toml").write_text(
        'trigger = "announcement"\ntemplate = "x"\nat = "2026-12-20T10:00"\n'
        '[audience]\ncustomers_file = "../secrets.csv"\n',
        encoding="utf-8",
    )
    [problem] = load_rules(rules).problems
    assert str(problem).endswith(
        "audience.customers_file: must be a path inside the rules folder, like customers/vip.csv"
    )


def test_queued_in_one_statement_per_zone_group_and_later_passes_add_nothing(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    add_customers(sessions, 9)
    sale = rule(at="2026-12-20T10:00", approved=True)
    clock = FixedClock(BEFORE)
    with sessions.begin() as session:
        assert plan(session, [sale], clock, settings).rules["yalda_sale"].planned == 9
    clock.advance(timedelta(hours=1))
    with sessions.begin() as session:
        assert plan(session, [sale], clock, settings).rules["yalda_sale"].planned == 0
    assert len(ledger(sessions)) == 9


def test_a_customers_file_that_is_a_fifo_is_refused_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "list.csv"
    os.mkfifo(fifo)
    listing = read_listing(fifo, "IR")
    assert listing.problems == [
        f"{fifo}: cannot read: not a regular file (a FIFO): a customers file must be a plain file"
    ]
