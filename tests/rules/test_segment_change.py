"""segment_change on SQLite and PostgreSQL with the injected clock: due the day of the move,
once per change, at most once per cooldown for a customer bouncing between segments, never
for history older than max_lateness; and `audience.segments` on any rule."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError
from shop_builders import put_segment
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.config import CustomerDefaults, Settings
from campaigner.customers.loader import load_customers, load_orders
from campaigner.db.models import Customer, CustomerScore, Message, Order, SegmentChange
from campaigner.planner import plan
from campaigner.rules.models import Rule
from campaigner.segments import SegmentMap
from campaigner.segments.daily import daily, rescore_loaded
from campaigner.segments.rfm_map import NO_SEGMENT, SEGMENTS


def rule(**fields: Any) -> Rule:
    base: dict[str, Any] = {
        "name": "slipping",
        "trigger": "segment_change",
        "template": "x",
        "from": ["loyal", "champions"],
        "to": ["at_risk"],
    }
    return TypeAdapter(Rule).validate_python({**base, **fields})


def customer(sessions: sessionmaker[Session], name: str, segment: str = "none") -> int:
    with sessions.begin() as session:
        row = Customer(
            external_id=name, phone=f"+98912000{len(name):04d}{name[-1]}"[:13],
            marketing_consent=True,
        )  # fmt: skip
        session.add(row)
        session.flush()
        if segment != "none":
            put_segment(session, row.id, segment)
        return row.id


def move(
    sessions: sessionmaker[Session], customer_id: int, old: str, new: str, at: datetime
) -> None:
    with sessions.begin() as session:
        session.add(SegmentChange(customer_id=customer_id, old=old, new=new, changed_at=at))


def planned(
    sessions: sessionmaker[Session], settings: Settings, clock: FixedClock, *rules: Rule
) -> list[tuple[int, str, datetime]]:
    with sessions.begin() as session:
        plan(session, list(rules), clock, settings)
    with sessions() as session:
        rows = session.execute(
            select(Message.customer_id, Message.occurrence_key, Message.due_at).order_by(Message.id)
        )
        return [(row[0], row[1], row[2]) for row in rows]


def test_a_move_is_due_that_day_once_and_a_bouncing_customer_once_per_cooldown(
    sessions: sessionmaker[Session], settings: Settings, clock: FixedClock
) -> None:
    slipping = rule()
    ali = customer(sessions, "ali")
    start = clock.now()
    move(sessions, ali, "loyal", "at_risk", start)
    clock.advance(timedelta(hours=1))
    first = planned(sessions, settings, clock, slipping)
    assert first == [(ali, start.date().isoformat(), start)]
    assert planned(sessions, settings, clock, slipping) == first  # planning again adds nothing
    # Back to loyal two days later, at risk again the day after: inside the 30 days.
    move(sessions, ali, "at_risk", "loyal", start + timedelta(days=2))
    move(sessions, ali, "loyal", "at_risk", start + timedelta(days=3))
    clock.set(start + timedelta(days=3, hours=1))
    assert planned(sessions, settings, clock, slipping) == first
    # Forty days on, the cooldown is over: a new move is a new message.
    later = start + timedelta(days=40)
    move(sessions, ali, "loyal", "at_risk", later)
    clock.set(later + timedelta(hours=1))
    assert planned(sessions, settings, clock, slipping) == [
        *first,
        (ali, later.date().isoformat(), later),
    ]


def test_only_moves_from_and_to_the_named_segments_and_no_history(
    sessions: sessionmaker[Session], settings: Settings, clock: FixedClock
) -> None:
    now = clock.now()
    wrong_source = customer(sessions, "bita")
    move(sessions, wrong_source, "new", "at_risk", now - timedelta(hours=1))
    wrong_target = customer(sessions, "cyrus")
    move(sessions, wrong_target, "loyal", "hibernating", now - timedelta(hours=1))
    long_ago = customer(sessions, "dara")
    move(sessions, long_ago, "loyal", "at_risk", now - timedelta(days=10))
    twice = customer(sessions, "elham")
    move(sessions, twice, "loyal", "at_risk", now - timedelta(hours=20))
    move(sessions, twice, "at_risk", "champions", now - timedelta(hours=10))
    move(sessions, twice, "champions", "at_risk", now - timedelta(hours=2))
    rows = planned(sessions, settings, clock, rule())
    # Two moves into at_risk within one pass's window: only the latest is messaged.
    assert rows == [
        (twice, (now - timedelta(hours=2)).date().isoformat(), now - timedelta(hours=2))
    ]


def test_a_held_out_row_counts_for_the_cooldown_like_a_sent_one(
    sessions: sessionmaker[Session], settings: Settings, clock: FixedClock
) -> None:
    """The control group must be treated like the messaged group, or uplift is skewed."""
    slipping = rule(holdout_percent=50)
    customers = [customer(sessions, f"c{n:02d}") for n in range(20)]
    now = clock.now()
    for customer_id in customers:
        move(sessions, customer_id, "loyal", "at_risk", now - timedelta(days=5))
        move(sessions, customer_id, "at_risk", "loyal", now - timedelta(days=3))
        move(sessions, customer_id, "loyal", "at_risk", now - timedelta(hours=1))
    clock.set(now - timedelta(days=5) + timedelta(minutes=5))
    first = planned(sessions, settings, clock, slipping)
    clock.set(now)
    assert planned(sessions, settings, clock, slipping) == first
    with sessions() as session:
        statuses = set(session.scalars(select(Message.status)))
    assert statuses == {"queued", "held_out"}


def test_the_recomputation_feeds_the_rule_end_to_end(
    sessions: sessionmaker[Session], settings: Settings, clock: FixedClock
) -> None:
    welcome = rule(name="welcome", **{"from": ["none"], "to": ["lost", "new"]})
    with sessions.begin() as session:  # the daemon's pass at start, on a shop still empty
        daily(session, SegmentMap.standard(), clock.now(), "IRT")
    with sessions.begin() as session:
        load_customers(
            session,
            [{"external_id": "a", "phone": "09121111111", "marketing_consent": "yes"}],
            CustomerDefaults(),
            now=clock.now(),
        )
        load_orders(
            session,
            [{"external_id": "o1", "customer_id": "a", "total": "10", "paid_at": clock.now()}],
            CustomerDefaults(),
            now=clock.now(),
            segment_map=SegmentMap.standard(),
        )
    rows = planned(sessions, settings, clock, welcome)
    assert [(key, due) for _, key, due in rows] == [(clock.now().date().isoformat(), clock.now())]


def test_a_customer_back_after_a_refund_is_welcomed_once(
    sessions: sessionmaker[Session], settings: Settings, clock: FixedClock
) -> None:
    """Regression: a customer whose only order was cancelled went back to none, and months
    later their next order recorded none -> lost again: the welcome, past its cooldown,
    greeted a customer it had greeted already."""
    welcome = rule(name="welcome", **{"from": ["none"], "to": ["lost", "new"]})

    def load(external_id: str, **order: Any) -> None:
        with sessions.begin() as session:
            load_orders(
                session,
                [{"external_id": external_id, "customer_id": "a", "total": "10", **order}],
                CustomerDefaults(),
                now=clock.now(),
                segment_map=SegmentMap.standard(),
            )

    with sessions.begin() as session:  # the daemon's pass at start, on a shop still empty
        daily(session, SegmentMap.standard(), clock.now(), "IRT")
        load_customers(
            session,
            [{"external_id": "a", "phone": "09121111111", "marketing_consent": "yes"}],
            CustomerDefaults(),
            now=clock.now(),
        )
    load("o1", paid_at=clock.now())
    first = planned(sessions, settings, clock, welcome)
    assert len(first) == 1
    clock.advance(timedelta(days=1))
    load("o1", status="cancelled")
    clock.advance(timedelta(days=90))
    load("o2", paid_at=clock.now())
    assert planned(sessions, settings, clock, welcome) == first
    with sessions() as session:
        history = session.execute(select(SegmentChange.old, SegmentChange.new)).all()
    assert [tuple(move) for move in history] == [("none", "lost"), ("lost", "none")]


def upgraded_shop(sessions: sessionmaker[Session], start: datetime) -> dict[str, int]:
    """Six customers with paid orders written before segments existed: no loader scored them."""
    with sessions.begin() as session:
        load_customers(
            session,
            [
                {"external_id": f"u{n}", "phone": f"0912111110{n}", "marketing_consent": "yes"}
                for n in range(6)
            ],
            CustomerDefaults(),
            now=start,
        )
        ids = {
            name: id_ for name, id_ in session.execute(select(Customer.external_id, Customer.id))
        }
        for n in range(6):
            for k in range(n + 1):
                session.add(
                    Order(
                        external_id=f"u{n}-{k}",
                        customer_id=ids[f"u{n}"],
                        total=Decimal(10 * (n + 1)),
                        paid_at=start - timedelta(days=40 * (6 - n) + k),
                    )
                )
    return ids


def test_the_first_pass_after_an_upgrade_records_where_everybody_is_and_messages_nobody(
    sessions: sessionmaker[Session], settings: Settings, clock: FixedClock
) -> None:
    """A shop upgrading to a version with segments: its orders are there, its scores are not.
    The daemon's first pass places every payer, but nobody moved that day: a rule from "any
    segment" must not message the whole shop. A real move afterwards is still due."""
    start = clock.now()
    ids = upgraded_shop(sessions, start)
    anywhere = rule(name="anywhere", **{"from": [], "to": list(SEGMENTS)})
    with sessions.begin() as session:
        first = daily(session, SegmentMap.standard(), start, "IRT")
        assert (first.scored, first.changed, first.placed) == (6, 0, 6)
        assert session.scalar(select(func.count()).select_from(SegmentChange)) == 0
        placed = {
            id_: segment
            for id_, segment in session.execute(
                select(CustomerScore.customer_id, CustomerScore.segment)
            )
        }
    assert len(placed) == 6 and NO_SEGMENT not in placed.values()
    clock.advance(timedelta(hours=1))
    assert planned(sessions, settings, clock, anywhere) == []

    clock.advance(timedelta(days=1))
    with sessions.begin() as session:  # u0, the oldest, buys again: it moves
        load_orders(
            session,
            [
                {
                    "external_id": "u0-new",
                    "customer_id": "u0",
                    "total": "500",
                    "paid_at": clock.now(),
                }
            ],
            CustomerDefaults(),
            now=clock.now(),
            segment_map=SegmentMap.standard(),
        )
        moved = session.scalars(select(SegmentChange.customer_id)).all()
    assert ids["u0"] in moved
    assert ids["u0"] in {row[0] for row in planned(sessions, settings, clock, anywhere)}


def test_an_order_loaded_before_the_first_pass_is_ranked_against_the_whole_shop(
    sessions: sessionmaker[Session], settings: Settings, clock: FixedClock
) -> None:
    """An import's order arrives between the upgrade and the daemon's first pass. Ranked
    among the few customers already scored, a customer who had just bought was placed in
    "lost" and that recorded as a move: a win-back rule messaged them minutes after buying.
    The import runs the shop's first pass instead (a request leaves it to the daemon:
    tests/segments/test_daily.py): everybody is placed where the whole shop puts them,
    quietly (the buyer's first order is months old), and the daemon's pass finds nothing
    new."""
    start = clock.now()
    ids = upgraded_shop(sessions, start)
    with sessions.begin() as session:
        load_orders(
            session,
            [{"external_id": "u1-web", "customer_id": "u1", "total": "70", "paid_at": start}],
            CustomerDefaults(),
            now=start,
        )
        rescore_loaded(session, SegmentMap.standard(), start, "IRT")
        history = session.execute(select(SegmentChange.customer_id, SegmentChange.new)).all()
        placed = session.get_one(CustomerScore, ids["u1"]).segment
        scored = session.scalar(select(func.count()).select_from(CustomerScore))
    assert scored == 6  # everybody, not only the loaded customer
    assert history == [] and placed not in ("lost", "hibernating")
    clock.advance(timedelta(minutes=5))
    with sessions.begin() as session:
        after = daily(session, SegmentMap.standard(), clock.now(), "IRT")
    assert (after.changed, after.placed) == (0, 0)
    win_back = rule(name="win_back", **{"from": [], "to": ["lost", "hibernating"]})
    clock.advance(timedelta(hours=1))
    assert planned(sessions, settings, clock, win_back) == []


def test_audience_segments_narrow_any_rule(
    sessions: sessionmaker[Session], settings: Settings, clock: FixedClock
) -> None:
    at_risk = customer(sessions, "f1", segment="at_risk")
    loyal = customer(sessions, "f2", segment="loyal")
    cant_lose = customer(sessions, "f3", segment="cant_lose")
    for customer_id in (at_risk, loyal, cant_lose):
        move(sessions, customer_id, "champions", "hibernating", clock.now())
    narrowed = rule(
        **{"from": ["champions"], "to": ["hibernating"]},
        audience={"segments": ["at_risk", "cant_lose"]},
    )
    assert {row[0] for row in planned(sessions, settings, clock, narrowed)} == {at_risk, cant_lose}


def test_audience_segments_can_name_none_the_customers_without_scores(
    sessions: sessionmaker[Session], settings: Settings, clock: FixedClock
) -> None:
    loyal = customer(sessions, "g1", segment="loyal")
    at_risk = customer(sessions, "g2", segment="at_risk")
    unscored = customer(sessions, "g3")
    lapsed = customer(sessions, "g4")
    with sessions.begin() as session:  # a score row kept "none" (its paid orders refunded)
        put_segment(session, lapsed, "none")
    for customer_id in (loyal, at_risk, unscored, lapsed):
        move(sessions, customer_id, "champions", "hibernating", clock.now())
    narrowed = rule(
        **{"from": ["champions"], "to": ["hibernating"]},
        audience={"segments": ["none", "loyal"]},
    )
    found = {row[0] for row in planned(sessions, settings, clock, narrowed)}
    assert found == {loyal, unscored, lapsed}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"to": ["vip"]}, "unknown segment"),
        ({"from": ["sleepy"]}, "unknown segment"),
        ({"to": []}, "at least 1 item"),
        ({"cooldown": "2h"}, "at least 1d"),
        ({"audience": {"segments": ["gold"]}}, "unknown segment"),
    ],
)
def test_bad_segment_fields_fail_at_load(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        rule(**fields)
