"""simulate: exact messages and times on a small shop, the real database untouched, and the
same messages as the daemon's own plan-and-drain loop over the same period."""

from __future__ import annotations

import json
from dataclasses import astuple
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from announcement_shop import rule
from shop_builders import (
    FOOTER,
    TEHRAN,
    add_customer,
    add_order,
    add_own_date,
    local,
    put_segment,
    run_daemon_loop,
    write_dated_rules,
    write_project,
)
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.announcements.draws import draw, rule_candidates
from campaigner.clock import FixedClock
from campaigner.config import GatewaySettings, Settings
from campaigner.customers.loader import load_orders
from campaigner.db.models import Base, Customer, Message, OptOut, SegmentChange
from campaigner.errors import CampaignerError
from campaigner.planner import plan
from campaigner.simulate import parse_start, simulate

START = datetime(2026, 3, 20, tzinfo=TEHRAN)  # midnight in the shop's zone


def small_shop(sessions: sessionmaker[Session]) -> None:
    """Five customers; three messages are due in the two days from START."""
    with sessions.begin() as session:
        night = add_customer(session, "night", "+989120000001")
        add_order(session, night, "O1", local(20, 1))  # thank-you due 03:00: waits for 09:00
        noon = add_customer(session, "noon", "+989120000002")
        add_order(session, noon, "O2", local(20, 10, 10))  # due 12:10, next tick 12:15
        add_customer(session, "bday", "+989120000003", birthday=date(1990, 3, 21))
        quiet = add_customer(session, "quiet", "+989120000004", consent=False)
        add_order(session, quiet, "O3", local(20, 11))
        stopped = add_customer(session, "stopped", "+989120000005")
        add_order(session, stopped, "O4", local(20, 11))
        session.add(OptOut(phone="+989120000005"))
        old = add_customer(session, "old", "+989120000006")
        add_order(session, old, "O5", local(10, 11))  # long before: too late, never sent


def ledger_row(
    customer: Customer, rule: str, key: str, *, due: datetime, status: str = "sent"
) -> Message:
    return Message(
        rule=rule,
        customer_id=customer.id,
        occurrence_key=key,
        status=status,
        phone=customer.phone,
        due_at=due,
        scheduled_for=due,
        expires_at=due + timedelta(days=1),
        sent_at=due if status == "sent" else None,
    )


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table.name: connection.scalar(select(func.count()).select_from(table)) or 0
            for table in Base.metadata.sorted_tables
        }


def test_simulate_prints_exactly_the_due_messages_at_their_times(
    settings: Settings, sessions: sessionmaker[Session], engine: Engine
) -> None:
    write_project(settings)
    small_shop(sessions)
    with sessions.begin() as session:
        # Planned before the number opted out, and still queued; and last year's history.
        stopped, noon = (
            session.scalars(select(Customer).where(Customer.external_id == name)).one()
            for name in ("stopped", "noon")
        )
        session.add_all(
            [
                ledger_row(stopped, "thank_you", "O4", due=local(19, 18), status="queued"),
                ledger_row(noon, "birthday", "2025", due=local(19, 10) - timedelta(days=365)),
            ]
        )
    result = simulate(settings, engine, START, 2)
    lines = [json.dumps(m.as_json(TEHRAN), ensure_ascii=False) for m in result.messages]
    assert [json.loads(line) for line in lines] == [
        {
            "at": "2026-03-20T09:00:00+03:30",
            "rule": "thank_you",
            "customer_id": "night",
            "phone": "+989120000001",
            "status": "sent",
            "reason": None,
            "text": "Hi Night, thanks for order O1!" + FOOTER,
            "segments": 1,
            "encoding": "gsm7",
        },
        {
            "at": "2026-03-20T12:15:00+03:30",
            "rule": "thank_you",
            "customer_id": "noon",
            "phone": "+989120000002",
            "status": "sent",
            "reason": None,
            "text": "Hi Noon, thanks for order O2!" + FOOTER,
            "segments": 1,
            "encoding": "gsm7",
        },
        {
            "at": "2026-03-21T10:00:00+03:30",
            "rule": "birthday",
            "customer_id": "bday",
            "phone": "+989120000003",
            "status": "sent",
            "reason": None,
            "text": "Happy birthday Bday!" + FOOTER,
            "segments": 1,
            "encoding": "gsm7",
        },
    ]
    summary = result.per_rule_per_day()
    assert summary == {
        date(2026, 3, 20): {"thank_you": 2},
        date(2026, 3, 21): {"birthday": 1},
    }
    assert [unsent.as_json(TEHRAN) for unsent in result.unsent] == [
        {
            "at": "2026-03-20T00:00:00+03:30",
            "rule": "thank_you",
            "customer_id": "stopped",
            "phone": "+989120000005",
            "status": "skipped",
            "reason": "opted_out",
            "text": None,
            "segments": None,
            "encoding": None,
        }
    ]
    assert {rule: dict(outcome.counts) for rule, outcome in result.per_rule().items()} == {
        "birthday": {"sent": 1},
        "thank_you": {"sent": 2, "skipped": 1},
    }


def test_simulate_never_touches_the_real_database_or_gateway(
    settings: Settings, sessions: sessionmaker[Session], engine: Engine, tmp_path: Path
) -> None:
    write_project(settings)
    small_shop(sessions)
    outbox = tmp_path / "outbox.jsonl"
    configured = settings.model_copy(
        update={"gateway": GatewaySettings(name="file", path=outbox, rate_per_second=5)}
    )
    before = row_counts(engine)
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if database:
        engine.dispose()
        stat, content = Path(database).stat(), Path(database).read_bytes()
    result = simulate(configured, engine, START, 2)
    assert len(result.messages) == 3
    assert not outbox.exists()  # the configured file gateway was never built nor called
    assert row_counts(engine) == before
    assert before["messages"] == 0
    if database:
        engine.dispose()
        assert Path(database).read_bytes() == content
        assert Path(database).stat().st_mtime_ns == stat.st_mtime_ns


def busy_shop(sessions: sessionmaker[Session]) -> None:
    """Competing rules for one phone (caps), a night order, birthdays in two calendars."""
    small_shop(sessions)
    with sessions.begin() as session:
        both = add_customer(session, "both", "+989120000007", birthday=date(1985, 3, 20))
        add_order(session, both, "O6", local(20, 2))  # thank-you 09:00, birthday 10:00: capped
        jalali = add_customer(session, "nowruz", "+989120000008", birthday=date(1990, 3, 21))
        jalali.calendar = "jalali"
        for n, hour in enumerate((8, 13, 19, 23)):
            shopper = add_customer(session, f"shopper{n}", f"+98912000001{n}")
            add_order(session, shopper, f"O1{n}", local(21, hour, 7 * n))


def product_rules(settings: Settings) -> None:
    """A cross-sell two days after a teapot, unless coffee beans were bought since, and a
    refill reminder 30 days after the last tea."""
    rules, templates = settings.paths.rules, settings.paths.templates
    (rules / "beans.toml").write_text(
        'trigger = "cross_sell"\ntemplate = "beans.j2"\nafter = "2d"\nsend_at = "10:00"\n'
        'bought = { categories = ["teaware"] }\nsuggest = { categories = ["Coffee beans"] }\n',
        encoding="utf-8",
    )
    (rules / "refill.toml").write_text(
        'trigger = "replenish"\ntemplate = "refill.j2"\ndays = 30\n'
        'bought = { products = ["TEA-57"] }\n',
        encoding="utf-8",
    )
    (templates / "beans.j2").write_text(
        "{{ first_name }}, {{ suggestion }} for your {{ order.items[0].name }}?", encoding="utf-8"
    )
    (templates / "refill.j2").write_text(
        "{{ first_name }}, more {{ product }}? ({{ customer.favourite_category }})",
        encoding="utf-8",
    )


def product_shop(sessions: sessionmaker[Session], settings: Settings) -> None:
    """Orders with line items, loaded as an import loads them; some purchases lie in the
    simulated period's future: they count only from the moment they were made."""
    pot = {"name": "Teapot", "sku": "POT-90", "categories": ["Teaware"]}
    beans = {"name": "Beans", "sku": "BEAN-70", "categories": ["Coffee beans"]}
    tea = {"name": "Chai", "sku": "TEA-57", "categories": ["Tea"], "quantity": 3}
    bought = [
        ("potter", local(18, 12), [pot]),  # beans suggested Mar 20 12:00
        ("beaned", local(19, 9), [pot]),
        ("beaned", local(20, 9), [beans]),  # bought before the suggestion was due: none
        ("late", local(19, 15), [pot]),
        ("late", local(22, 9), [beans]),  # after it was due (Mar 21 15:00), before it went
        ("sipper", datetime(2026, 2, 18, 11, tzinfo=TEHRAN), [tea, pot]),  # refill Mar 20 11:00
        ("stocked", datetime(2026, 2, 19, 11, tzinfo=TEHRAN), [tea]),
        ("stocked", local(21, 10), [tea]),  # bought again an hour before the reminder
    ]
    with sessions.begin() as session:
        for n, name in enumerate(dict.fromkeys(who for who, _, _ in bought)):
            add_customer(session, name, f"+98912000004{n}")
        records = [
            {
                "external_id": f"P{n}",
                "customer_id": who,
                "total": "100",
                "status": "paid",
                "paid_at": paid_at.isoformat(),
                "items": items,
            }
            for n, (who, paid_at, items) in enumerate(bought)
        ]
        result = load_orders(session, records, settings.customers, now=START)
        assert not result.errors


def announce_and_draw(settings: Settings, sessions: sessionmaker[Session]) -> None:
    """An approved announcement spread over 2 hours on 22 March (the day after Nowruz, whose
    greeting takes the 21st's cap); one queued, then withdrawn
    (its file deleted) before its time; a prize draw and a rule telling its winners."""
    rules, templates = settings.paths.rules, settings.paths.templates
    (templates / "sale.j2").write_text("{{ first_name }} جان، حراج بهاره!", encoding="utf-8")
    (templates / "prize.j2").write_text("{{ first_name }}، برنده شدید!", encoding="utf-8")
    (rules / "spring_sale.toml").write_text(
        'trigger = "announcement"\ntemplate = "sale.j2"\nat = "2026-03-22T11:00"\n'
        'spread = "2h"\napproved = true\n',
        encoding="utf-8",
    )
    (rules / "prize.toml").write_text(
        'trigger = "draw_winner"\ntemplate = "prize.j2"\ndraw = "spring"\n', encoding="utf-8"
    )
    old_sale = rule(name="old_sale", at="2026-03-22T12:00", approved=True, template="sale.j2")
    with sessions.begin() as session:
        plan(session, [old_sale], FixedClock(START), settings)
        candidates = rule_candidates(session, old_sale, TEHRAN, START)
        draw(session, "spring", "rule old_sale", candidates, 2, seed="s", by="t", now=START)


def test_simulate_sends_what_the_daemon_loop_sends(
    settings: Settings, sessions: sessionmaker[Session], engine: Engine
) -> None:
    write_project(settings)
    write_dated_rules(settings)
    busy_shop(sessions)
    slipping_away(settings, sessions)

    with sessions.begin() as session:
        wed = add_customer(session, "wed", "+989120000020")
        add_own_date(session, wed, "anniversary", date(2016, 3, 22))
    product_rules(settings)
    product_shop(sessions, settings)
    announce_and_draw(settings, sessions)
    simulated = simulate(settings, engine, START, 3)
    daemon = [astuple(sent) for sent in run_daemon_loop(settings, sessions, START, 3)]
    rehearsal = [(m.at, m.rule, m.customer_id, m.phone, m.text) for m in simulated.messages]
    assert len(daemon) >= 8
    assert sorted(rehearsal) == sorted(daemon)
    # The approved announcement and the draw's winners go out in both, the withdrawn one not.
    assert {"spring_sale", "prize"} <= {r[1] for r in rehearsal}
    assert "old_sale" not in {r[1] for r in rehearsal}
    # What did not go out, and why, is the same too.
    with sessions() as session:
        query = (
            select(Message.rule, Customer.external_id, Message.status, Message.reason)
            .join(Customer)
            .where(Message.status != "sent")
        )
        unsent = sorted(
            (rule, who, "deferred" if status == "queued" else status, reason)
            for rule, who, status, reason in session.execute(query)
        )
    assert sorted((u.rule, u.customer_id, u.status, u.reason) for u in simulated.unsent) == unsent
    # The thank-you gave the day's one slot to the birthday wish due later, in both runs.
    assert ("birthday", "both") in {(r[1], r[2]) for r in rehearsal}
    assert ("thank_you", "both", "skipped", "cap_priority") in unsent
    # Segment moves: one the night before, one mid-period, a bounce inside the cooldown.
    slipped = sorted((r[0], r[2]) for r in rehearsal if r[1] == "slipping")
    # The bouncer's move on the 21st waits for the 22nd: the Nowruz greeting took the cap.
    assert slipped == [(local(20, 9), "slipper"), (local(22, 9), "bouncer")]
    assert any("(at_risk)" in r[4] for r in rehearsal if r[1] == "slipping")

    # Nowruz and the anniversary went out as the daemon sends them, with their own words.
    texts = {(r[1], r[2]): r[4] for r in rehearsal}
    assert texts[("nowruz", "wed")] == "Happy Nowruz ۱۴۰۵/۰۱/۰۱, Wed!" + FOOTER
    assert texts[("anniversary", "wed")] == "10 years together, Wed!" + FOOTER
    assert sum(rule == "nowruz" for _, rule, *_ in rehearsal) >= 5

    # Products: what was bought by the time each rule looked, and only that, counts.
    products = sorted(
        (at, rule, who, text) for at, rule, who, _, text in rehearsal if rule in ("beans", "refill")
    )
    assert products == [
        (local(20, 11), "refill", "sipper", "Sipper, more Chai? (tea)" + FOOTER),
        (local(20, 12), "beans", "potter", "Potter, coffee beans for your Teapot?" + FOOTER),
    ]
    # Late's suggestion, due on 21 March, left the day's slot to the Nowruz greeting; Late
    # bought the beans on the 22nd before it went: skipped at send time, in both runs.
    assert ("beans", "late", "skipped", "bought_suggestion") in unsent
    withdrawn = {(u.rule, u.status, u.reason) for u in simulated.unsent}
    assert ("old_sale", "cancelled", "rule_withdrawn") in withdrawn


def slipping_away(settings: Settings, sessions: sessionmaker[Session]) -> None:
    """A segment_change rule and segment moves recorded by recomputations."""
    (settings.paths.rules / "slipping.toml").write_text(
        'trigger = "segment_change"\ntemplate = "slipping.j2"\npriority = 60\n'
        'from = ["loyal", "champions"]\nto = ["at_risk"]\n',
        encoding="utf-8",
    )
    (settings.paths.templates / "slipping.j2").write_text(
        "We miss you {{ first_name }} ({{ customer.segment }})", encoding="utf-8"
    )
    with sessions.begin() as session:
        slipper = add_customer(session, "slipper", "+989120000031")
        bouncer = add_customer(session, "bouncer", "+989120000032")
        put_segment(session, slipper.id, "at_risk")
        put_segment(session, bouncer.id, "at_risk")
        moves = [
            (slipper, "loyal", local(19, 23)),
            (bouncer, "champions", local(21, 14)),
            (bouncer, "at_risk", local(22, 8)),  # back to loyal: not a move into at_risk
            (bouncer, "loyal", local(22, 12)),  # at risk again inside the 30 days
        ]
        for customer, old, at in moves:
            new = "loyal" if old == "at_risk" else "at_risk"
            session.add(
                SegmentChange(
                    customer_id=customer.id, old=old, new=new, changed_at=at.astimezone(UTC)
                )
            )


def test_simulate_lists_the_control_group_at_its_due_time(
    settings: Settings, sessions: sessionmaker[Session], engine: Engine
) -> None:
    write_project(settings)
    birthday = settings.paths.rules / "birthday.toml"
    birthday.write_text(birthday.read_text() + "holdout_percent = 50\n", encoding="utf-8")
    with sessions.begin() as session:
        for n in range(8):
            add_customer(session, f"b{n}", f"+98912000002{n}", birthday=date(1990, 3, 20))
    result = simulate(settings, engine, START, 1)
    held = [(u.at, u.status, u.reason) for u in result.unsent]
    assert held and set(held) == {(local(20, 10), "held_out", None)}
    assert len(result.messages) + len(held) == 8
    assert dict(result.per_rule()["birthday"].counts) == {
        "sent": len(result.messages),
        "held_out": len(held),
    }


def test_start_accepts_a_date_or_a_datetime() -> None:
    assert parse_start("2026-03-20", TEHRAN) == START
    assert parse_start("2026-03-20T09:30", TEHRAN) == local(20, 9, 30)
    assert parse_start("2026-03-20T06:00+00:00", TEHRAN) == local(20, 9, 30)
    with pytest.raises(CampaignerError, match="--start"):
        parse_start("next tuesday", TEHRAN)
