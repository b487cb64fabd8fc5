"""The runtime's planning pass: a failing rule is set aside and retried, the others plan."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from conftest import CaptureGateway, FixedRules, Project, add_paid_order
from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.db.models import Message
from campaigner.rules.models import Rule
from campaigner.runtime import Runtime

THANKS = {"trigger": "post_purchase", "template": "x", "delay": "2h", "name": "thank_you"}


def rule(**fields: object) -> Rule:
    return TypeAdapter(Rule).validate_python({**THANKS, **fields})


@pytest.fixture
def runtime(settings: Settings, sessions: sessionmaker[Session], clock: FixedClock) -> Runtime:
    return Runtime.build(
        settings, clock=clock, sessions=sessions, gateway=CaptureGateway(), rulebook=FixedRules()
    )  # type: ignore[arg-type]


def test_a_failing_rule_waits_doubling_and_the_others_keep_planning(
    runtime: Runtime,
    sessions: sessionmaker[Session],
    clock: FixedClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rules = runtime.rulebook.rules  # type: ignore[attr-defined]
    broken = rule(name="broken").model_copy(update={"priority": 2**70})
    rules.update(broken=broken, thank_you=rule())
    add_paid_order(sessions, clock, 1)

    with caplog.at_level(logging.ERROR, logger="campaigner"):
        first = runtime.plan()
    assert first.rules["thank_you"].planned == 1
    failure = runtime.quarantine.failures()["broken"]
    assert (failure.failures, failure.since) == (1, clock.now())
    assert failure.retry_at == clock.now() + timedelta(minutes=1)
    assert first.rules["broken"].skipped_until == failure.retry_at
    [line] = [r.getMessage() for r in caplog.records if "broken" in r.getMessage()]
    assert line.startswith("plan broken failed (1 in a row): ") and len(line) < 450
    assert "next try at" in line and "when its file changes" in line

    # Within its wait the rule is not tried; thank-yous keep being planned.
    add_paid_order(sessions, clock, 2)
    clock.advance(timedelta(seconds=30))
    second = runtime.plan()
    assert second.rules["thank_you"].planned == 1
    assert second.rules["broken"].error == failure.error
    assert runtime.quarantine.failures()["broken"].failures == 1

    # After it, tried again and failing again: twice as long.
    clock.advance(timedelta(seconds=31))
    runtime.plan()
    again = runtime.quarantine.failures()["broken"]
    assert (again.failures, again.since) == (2, failure.since)
    assert again.retry_at == clock.now() + timedelta(minutes=2)

    # The file is fixed: planned at once, and no longer reported.
    rules["broken"] = rule(name="broken")
    fixed = runtime.plan()
    assert fixed.rules["broken"].planned == 2 and fixed.errors == {}
    assert runtime.quarantine.failures() == {}


def test_a_rule_removed_from_the_rulebook_is_forgotten(
    runtime: Runtime, sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    rules = runtime.rulebook.rules  # type: ignore[attr-defined]
    rules["broken"] = rule(name="broken").model_copy(update={"priority": 2**70})
    add_paid_order(sessions, clock, 1)
    runtime.plan()
    assert list(runtime.quarantine.failures()) == ["broken"]
    del rules["broken"]
    runtime.plan()
    assert runtime.quarantine.failures() == {}


def test_a_runaway_render_fails_its_message_with_template_limit(project: Project) -> None:
    # Fine for the sample customer of `rules check`, a runaway for one real customer.
    project.write_template(
        "thank_you.j2",
        "Thanks {{ first_name }}{% if first_name == 'Evil' %}{% for i in range(100000) %}"
        "{% for j in range(100000) %}{% endfor %}{% endfor %}{% endif %}",
    )
    runtime = project.runtime()
    try:
        for name in ("Sara", "Evil", "Ali", "Evil"):
            project.paid_order(name)
        assert sorted(project.send_due(runtime)) == ["Thanks Ali", "Thanks Sara"]
    finally:
        runtime.close()
    with project.sessions() as session:
        rows = session.execute(select(Message.status, Message.reason, Message.last_error)).all()
    failed = [row for row in rows if row.status == "failed"]
    assert [row.reason for row in failed] == ["template_limit", "template_limit"]
    assert all("loop iterations" in row.last_error for row in failed)
