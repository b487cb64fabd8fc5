from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from campaigner.config import SendingSettings, SendWindow
from campaigner.policy import QuietDays, RulePolicy, SendingPolicy

TEHRAN = ZoneInfo("Asia/Tehran")
MARKETING = RulePolicy()


def policy(**changes: object) -> SendingPolicy:
    return SendingPolicy(SendingSettings.model_validate(changes), "Asia/Tehran")


def test_quiet_days_parse_weekdays_gregorian_and_jalali() -> None:
    quiet = QuietDays.parse(["fri"], ["2026-04-01", "jalali:01-13"])
    assert date(2026, 3, 20) in quiet  # a Friday
    assert date(2026, 4, 1) in quiet
    assert date(2026, 4, 2) in quiet  # 13 Farvardin 1405, Sizdah Bedar
    assert date(2027, 4, 2) in quiet  # and every year after (13 Farvardin 1406)
    assert date(2026, 3, 22) not in quiet
    with pytest.raises(ValueError, match="jalali:MM-DD"):
        QuietDays.parse([], ["jalali:13"])
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        QuietDays.parse([], ["1 April"])


def test_next_opening_inside_and_outside_the_window() -> None:
    terms = policy(window="09:00-20:00")
    inside = datetime(2026, 3, 22, 10, 0, tzinfo=TEHRAN)
    assert terms.next_opening(inside, TEHRAN, MARKETING) == inside
    closing = datetime(2026, 3, 22, 20, 0, tzinfo=TEHRAN)
    assert terms.next_opening(closing, TEHRAN, MARKETING) == closing
    late = closing + timedelta(seconds=1)
    assert terms.next_opening(late, TEHRAN, MARKETING) == datetime(2026, 3, 23, 9, 0, tzinfo=TEHRAN)


def test_window_wrapping_midnight_and_rule_override() -> None:
    night_owl = RulePolicy(window=SendWindow.parse("22:00-02:00"))
    terms = policy()
    one_am = datetime(2026, 3, 22, 1, 0, tzinfo=TEHRAN)
    assert terms.next_opening(one_am, TEHRAN, night_owl) == one_am
    noon = datetime(2026, 3, 22, 12, 0, tzinfo=TEHRAN)
    expected = datetime(2026, 3, 22, 22, 0, tzinfo=TEHRAN)
    assert terms.next_opening(noon, TEHRAN, night_owl) == expected.astimezone(UTC)


def test_transactional_rules_ignore_quiet_days_and_caps() -> None:
    terms = policy(quiet_weekdays=["fri"], max_per_day=1)
    friday = datetime(2026, 3, 20, 10, 0, tzinfo=TEHRAN)
    transactional = RulePolicy(transactional=True)
    assert terms.next_opening(friday, TEHRAN, transactional) == friday
    assert terms.within_caps(friday, TEHRAN, transactional, [friday] * 5)
    assert not terms.within_caps(friday, TEHRAN, MARKETING, [friday])


def test_caps_count_the_local_day_and_a_rolling_week() -> None:
    terms = policy(max_per_day=1, max_per_week=2)
    # 02:00 UTC on the 22nd is 05:30 in Tehran: the same local day as 10:00 Tehran.
    early = datetime(2026, 3, 22, 2, 0, tzinfo=UTC)
    at = datetime(2026, 3, 22, 10, 0, tzinfo=TEHRAN)
    assert not terms.within_caps(at, TEHRAN, MARKETING, [early])
    assert terms.within_caps(at, TEHRAN, RulePolicy(max_per_day=2), [early])
    assert terms.within_caps(at, TEHRAN, RulePolicy(max_per_day=0, max_per_week=0), [at] * 9)
    last_week = [at - timedelta(days=6), at - timedelta(days=3)]
    assert not terms.within_caps(at, TEHRAN, MARKETING, last_week)
    # The 16th's message leaves the week on the 23rd at 10:00:01, not at 09:00.
    later = terms.next_day_within_caps(at, TEHRAN, MARKETING, last_week)
    assert later == datetime(2026, 3, 23, 10, 0, 1, tzinfo=TEHRAN)
