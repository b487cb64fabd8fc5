import math
from datetime import date
from decimal import Decimal

import pytest
from report_scenario import ATTRIBUTION, NOW, SINCE, UNTIL, empty_report, scenario_report
from report_scenario import scenario_settings as adjust
from shop_builders import put_segment
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.db.models import Message
from campaigner.reports import build_report
from campaigner.reports.model import (
    DailySends,
    Money,
    NpsSummary,
    NpsWeek,
    Referrals,
    Revenue,
    SegmentResult,
    Uplift,
)


def test_every_number_of_the_month(sessions: sessionmaker[Session], settings: Settings) -> None:
    report = scenario_report(sessions, settings)
    assert [stats.rule for stats in report.rules] == ["nps", "thank_you", "win_back"]
    nps_rule, thank_you, win_back = report.rules

    # thank_you: m1..m12 are due in March; m13 (February) is not.
    assert thank_you.planned == 12
    assert (thank_you.queued, thank_you.held_out, thank_you.sending) == (1, 3, 0)
    assert (thank_you.sent, thank_you.delivered, thank_you.undelivered) == (4, 2, 1)
    assert thank_you.delivery_rate == 0.5
    assert thank_you.failed == 1 and thank_you.failed_by_reason == {"invalid_number": 1}
    assert thank_you.skipped == 2 and thank_you.skipped_by_reason == {"cap": 1, "opted_out": 1}
    assert (thank_you.expired, thank_you.unknown) == (1, 0)
    # gsm7: m1 + m4 = 2 segments at 0.01; ucs2: m2 (2) + m3 (1) = 3 at 0.02.
    assert thank_you.segments == 5
    assert thank_you.cost == Money(Decimal("0.08"), "USD")
    # m1 -> order 2 (100), m3 -> orders 4 and 5 (50); m2's order came 9 days later.
    assert thank_you.conversions == 2 and thank_you.conversion_rate == 0.5
    # Orders without a currency are in customers.currency (IRT).
    assert thank_you.revenue == [Revenue("IRT", orders=3, amount=Decimal("150.00"))]
    assert thank_you.converted_revenue is None  # no exchange rates configured
    assert thank_you.coupons_redeemed == 1  # m1's; m13's coupon is outside the period

    uplift = thank_you.uplift
    assert uplift is not None and uplift.enough_data
    assert (uplift.messaged, uplift.messaged_conversions) == (4, 2)
    assert (uplift.held_out, uplift.held_out_conversions) == (3, 1)  # m9 converts; m12's was before
    assert uplift.messaged_rate == 0.5 and uplift.held_out_rate == pytest.approx(1 / 3)
    assert uplift.difference == pytest.approx(1 / 6)
    error = math.sqrt(0.5 * 0.5 / 4 + (1 / 3) * (2 / 3) / 3)
    assert uplift.confidence_interval == pytest.approx((1 / 6 - 1.96 * error, 1 / 6 + 1.96 * error))
    assert uplift.verdict == "no clear difference"

    # win_back: a 10-day window; w2's order came after 14 days.
    assert (win_back.planned, win_back.held_out, win_back.sent, win_back.delivered) == (4, 1, 3, 2)
    assert win_back.segments == 3 and win_back.cost == Money(Decimal("0.06"), "USD")
    assert win_back.conversions == 1
    assert win_back.revenue == [Revenue("IRT", orders=1, amount=Decimal("80.00"))]
    assert win_back.conversion_rate == pytest.approx(1 / 3)
    assert win_back.uplift is not None and not win_back.uplift.enough_data
    assert win_back.uplift.difference is None and win_back.uplift.confidence_interval is None
    assert win_back.uplift.verdict == "not enough data (need 3 in each group)"

    assert (nps_rule.planned, nps_rule.sent, nps_rule.delivered, nps_rule.segments) == (5, 5, 5, 5)
    assert nps_rule.cost == Money(Decimal("0.10"), "USD")
    assert nps_rule.conversions == 0 and nps_rule.revenue == []
    assert nps_rule.uplift is None

    assert report.daily_sends == [
        DailySends(date(2026, 3, 1), "nps", 1),
        DailySends(date(2026, 3, 2), "thank_you", 1),
        DailySends(date(2026, 3, 3), "thank_you", 1),
        DailySends(date(2026, 3, 4), "thank_you", 1),
        DailySends(date(2026, 3, 5), "thank_you", 1),
        DailySends(date(2026, 3, 10), "win_back", 1),
        DailySends(date(2026, 3, 11), "win_back", 1),
        DailySends(date(2026, 3, 12), "win_back", 1),
        DailySends(date(2026, 3, 15), "nps", 2),
        DailySends(date(2026, 3, 16), "nps", 1),
        DailySends(date(2026, 3, 24), "nps", 1),
    ]

    kpis = report.kpis
    assert (kpis.buyers, kpis.active_customers, kpis.churned_customers) == (10, 8, 2)
    assert kpis.churn_rate == 0.2
    assert kpis.repeat_buyers == 5 and kpis.repeat_purchase_rate == 0.5
    (revenue,) = kpis.revenue
    assert revenue == Revenue("IRT", orders=15, amount=Decimal("835.00"), buyers=10)
    assert revenue.average_clv == Decimal("83.50")
    assert revenue.average_order_value == Decimal("55.67")
    assert (kpis.win_back_recipients, kpis.win_back_recovered) == (3, 2)
    assert kpis.win_back_recovery_rate == pytest.approx(2 / 3)
    assert kpis.referrals == [Referrals(1, "سارا", 2), Referrals(2, "Customer2", 1)]

    assert report.nps == NpsSummary(responses=4, promoters=1, passives=1, detractors=2)
    assert report.nps.score == -25
    assert report.nps_weeks == [
        NpsWeek(date(2026, 3, 16), NpsSummary(3, 1, 1, 1)),
        NpsWeek(date(2026, 3, 23), NpsSummary(1, 0, 0, 1)),
    ]
    assert report.nps_weeks[0].summary.score == 0
    assert report.nps_weeks[1].summary.score == -100


def test_one_rule_and_all_time(sessions: sessionmaker[Session], settings: Settings) -> None:
    report = scenario_report(sessions, settings, rule="win_back", since=None)
    assert [stats.rule for stats in report.rules] == ["win_back"]
    assert report.nps.responses == 0 and report.nps_weeks == []
    assert report.kpis.buyers == 10  # the shop's health does not depend on the rule filter
    with sessions() as session:
        everything = build_report(
            session,
            since=None,
            until=None,
            rule="thank_you",
            attribution_days={},
            settings=adjust(settings),
            clock=FixedClock(NOW),
        )
    (thank_you,) = everything.rules
    assert thank_you.planned == 13 and thank_you.sent == 5  # m13 from February too
    assert thank_you.coupons_redeemed == 2
    assert everything.kpis.buyers == 10
    assert [item.amount for item in everything.kpis.revenue] == [Decimal("934.00")]


def test_big_enough_groups_get_a_verdict() -> None:
    helps = Uplift(
        messaged=400,
        messaged_conversions=200,
        held_out=300,
        held_out_conversions=60,
        min_group_size=30,
    )
    assert helps.difference == pytest.approx(0.3) and helps.verdict == "the messages help"
    hurts = Uplift(
        messaged=300,
        messaged_conversions=60,
        held_out=400,
        held_out_conversions=200,
        min_group_size=30,
    )
    assert hurts.verdict == "the messages hurt"
    small = Uplift(
        messaged=400,
        messaged_conversions=200,
        held_out=29,
        held_out_conversions=1,
        min_group_size=30,
    )
    assert small.difference is None and small.verdict.startswith("not enough data")


def test_empty_database_gives_an_empty_report(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    report = empty_report(sessions, settings)
    assert report.is_empty
    assert report.rules == [] and report.daily_sends == [] and report.nps_weeks == []
    assert report.kpis.buyers == 0 and report.kpis.churn_rate is None
    assert report.kpis.revenue == [] and report.kpis.win_back_recovery_rate is None
    assert report.nps.score is None and report.kpis.referrals == []


def test_conversions_per_value_segment_count_the_segment_at_planning(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    """The ledger row keeps the segment the customer was in when it was planned; customers
    have moved since, and m4 was planned before the segment was kept."""
    scenario_report(sessions, settings)  # the scenario's shop, in the database
    with sessions.begin() as session:
        for message_id, segment in ((1, "champions"), (2, "champions"), (3, "at_risk")):
            session.execute(
                update(Message).where(Message.id == message_id).values(customer_segment=segment)
            )
        for customer_id, segment in ((1, "lost"), (2, "champions"), (3, "champions")):
            put_segment(session, customer_id, segment)  # where they are today
    with sessions() as session:
        report = build_report(
            session,
            since=SINCE,
            until=UNTIL,
            rule=None,
            attribution_days=ATTRIBUTION,
            settings=adjust(settings),
            clock=FixedClock(NOW),
        )
    thank_you = next(stats for stats in report.rules if stats.rule == "thank_you")
    # Sent: m1 (c1, converts), m2 (c2, its order came too late), m3 (c3, converts), m4 (c4).
    assert thank_you.by_segment == [
        SegmentResult("champions", sent=2, conversions=1),
        SegmentResult("at_risk", sent=1, conversions=1),
        SegmentResult("unrecorded", sent=1, conversions=0),
    ]
    assert report.segment_sizes["champions"] == 2 and report.segment_sizes["lost"] == 1
    assert report.segment_sizes["none"] == 9
