from datetime import UTC, datetime, timedelta

from pydantic import TypeAdapter

from campaigner.quarantine import Quarantine
from campaigner.rules.models import Rule

NOW = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)


def thanks(**fields: object) -> Rule:
    return TypeAdapter(Rule).validate_python(
        {"name": "t", "trigger": "post_purchase", "template": "x", "delay": "2h", **fields}
    )


def test_the_wait_doubles_up_to_an_hour() -> None:
    quarantine = Quarantine()
    rule = thanks()
    waits = []
    now = NOW
    for _ in range(10):
        failure = quarantine.failed(rule, "boom", now)
        waits.append(failure.retry_at - now)
        assert quarantine.holds(rule, now) == failure
        now = failure.retry_at
        assert quarantine.holds(rule, now) is None
    assert waits[:7] == [timedelta(minutes=m) for m in (1, 2, 4, 8, 16, 32, 60)]
    assert set(waits[6:]) == {timedelta(hours=1)}
    assert failure.since == NOW and failure.failures == 10


def test_an_edited_rule_is_tried_at_once() -> None:
    quarantine = Quarantine()
    quarantine.failed(thanks(), "boom", NOW)
    assert quarantine.holds(thanks(), NOW) is not None
    assert quarantine.holds(thanks(delay="3h"), NOW) is None
    quarantine.succeeded("t")
    assert quarantine.failures() == {}
