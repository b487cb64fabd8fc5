"""The engine as `campaigner run` drives it: plan, then dispatch, on an injected clock.

A rule failing at plan time is set aside and retried while the others plan; priorities hold
under the daily cap.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import pytest
from conftest import CaptureGateway, FixedRules, Project, add_paid_order
from pydantic import TypeAdapter
from shop_builders import FOOTER, add_customer, add_order, local, run_daemon_loop, write_project
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.config import Settings
from campaigner.db.models import Customer, Message
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
    # Fine for the sample customer of `rules check`, a runaway for one real customer. The loop
    # cap is what stops it; the time budget (tested in test_sandbox) is widened so that a
    # loaded machine, where 100,000 iterations may take seconds, cannot stop it first.
    messages = project.settings.messages.model_copy(update={"render_timeout_seconds": 60})
    project.settings = project.settings.model_copy(update={"messages": messages})
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


def outcomes(sessions: sessionmaker[Session]) -> dict[tuple[str, str], tuple[str, str | None]]:
    """(rule, customer) -> (status, reason) of every ledger row."""
    with sessions() as session:
        query = select(Message.rule, Customer.external_id, Message.status, Message.reason).join(
            Customer
        )
        return {
            (rule, who): (status, reason) for rule, who, status, reason in session.execute(query)
        }


def test_a_birthday_wish_is_not_lost_to_an_earlier_thank_you_under_the_daily_cap(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    """Seen: with max_per_day = 1 the thank-you (priority 50) sent at 09:00 used the day, and
    the birthday wish (priority 80) due at 10:00 was skipped when its 12 hours ran out."""
    assert settings.sending.max_per_day == 1
    write_project(settings)
    with sessions.begin() as session:
        early = add_customer(session, "early", "+989120000001", birthday=date(1990, 3, 20))
        add_order(session, early, "O1", local(20, 2))  # thank-you due 04:00, waits for 09:00
        late = add_customer(session, "late", "+989120000002", birthday=date(1991, 3, 20))
        add_order(session, late, "O2", local(20, 7, 30))  # thank-you due 09:30

    sent = run_daemon_loop(settings, sessions, local(20, 0), 2)

    assert [(s.at, s.rule, s.customer_id) for s in sent] == [
        (local(20, 10), "birthday", "early"),
        (local(20, 10), "birthday", "late"),
        # Due 09:30 and good for a day: the next morning is still in time.
        (local(21, 9), "thank_you", "late"),
    ]
    assert outcomes(sessions) == {
        ("birthday", "early"): ("sent", None),
        ("birthday", "late"): ("sent", None),
        # Due 04:00, expired at 04:00 the next day, before the window opened again.
        ("thank_you", "early"): ("skipped", "cap_priority"),
        ("thank_you", "late"): ("sent", None),
    }


@contextmanager
def family_at_nine(
    settings: Settings, sessions: sessionmaker[Session], clock: FixedClock
) -> Iterator[tuple[Runtime, CaptureGateway]]:
    """A parent who bought at 07:00 (thank-you due 09:00) and a child whose birthday it is
    (wish due 10:00), on one phone; the engine at 09:00, after planning and dispatching."""
    write_project(settings)
    with sessions.begin() as session:
        parent = add_customer(session, "parent", "+989120000009")
        add_order(session, parent, "O9", local(20, 7))
        add_customer(session, "child", "+989120000009", birthday=date(2010, 3, 20))
    clock.set(local(20, 9))
    gateway = CaptureGateway()
    runtime = Runtime.build(settings, clock=clock, sessions=sessions, gateway=gateway)
    try:
        runtime.plan()
        assert runtime.drain().deferred == 1
        assert outcomes(sessions) == {("thank_you", "parent"): ("queued", "cap_priority")}
        yield runtime, gateway
    finally:
        runtime.close()


def test_a_thank_you_goes_the_same_day_when_the_birthday_it_waited_for_is_not_planned(
    settings: Settings, sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    with family_at_nine(settings, sessions, clock) as (runtime, gateway):
        with sessions.begin() as session:  # the child's consent is withdrawn meanwhile
            child = session.scalars(select(Customer).where(Customer.external_id == "child"))
            child.one().marketing_consent = False
        clock.set(local(20, 10))
        runtime.plan()
        assert runtime.drain().sent == 1
    assert outcomes(sessions) == {("thank_you", "parent"): ("sent", None)}
    assert [m.text for m in gateway.sent] == ["Hi Parent, thanks for order O9!" + FOOTER]


def test_a_birthday_due_but_not_planned_yet_is_waited_for_a_minute_at_a_time(
    settings: Settings, sessions: sessionmaker[Session], clock: FixedClock
) -> None:
    """Birthdays are planned every 15 minutes: dispatch may see one due before its row."""
    with family_at_nine(settings, sessions, clock) as (runtime, gateway):
        clock.set(local(20, 10))
        assert runtime.drain().deferred == 1  # no planning pass yet: the birthday has no row
        with sessions() as session:
            waiting = session.scalars(select(Message)).one()
            assert (waiting.reason, waiting.scheduled_for) == ("cap_priority", local(20, 10, 1))
        clock.set(local(20, 10, 1))
        runtime.plan()
        assert runtime.drain().sent == 1
    assert [m.text for m in gateway.sent] == ["Happy birthday Child!" + FOOTER]
    assert outcomes(sessions) == {
        ("birthday", "child"): ("sent", None),
        ("thank_you", "parent"): ("queued", "cap_priority"),
    }


def test_the_models_are_mapped_at_start_not_in_the_first_dispatch(tmp_path: Path) -> None:
    """In a fresh process (this one has long mapped them), building the runtime leaves no
    mapper for the first batch to set up."""
    script = (
        "from campaigner.clock import SystemClock\n"
        "from campaigner.config import Settings\n"
        "from campaigner.db import create_engine_for, session_factory\n"
        "from campaigner.db.models import Base\n"
        "from campaigner.runtime import Runtime\n"
        f"settings = Settings.model_validate({{'database': {{'url': 'sqlite:///{tmp_path}/x.db'}}}})\n"
        "assert not all(m.configured for m in Base.registry.mappers)\n"
        "Runtime.build(settings, clock=SystemClock(),"
        " sessions=session_factory(create_engine_for(settings.database.url)))\n"
        "print(all(m.configured for m in Base.registry.mappers))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.stdout.strip() == "True", done.stderr[-2000:]
