"""Referral codes issued per dispatch batch, as coupons are (`ReferralBatch`).

A batch stores its new codes with one UPDATE. Whatever happens meanwhile (another dispatcher
gives the customer a code, a code is taken, the batch dies before it commits), no two
customers share a code and no text goes out showing a code its customer does not have.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from conftest import THANK_YOU_RULE, Project
from sqlalchemy import Engine, event, select, update
from sqlalchemy.orm import Session, sessionmaker

import campaigner.dispatch.dispatcher as dispatcher_module
import campaigner.messages.referrals as referrals
from campaigner.db.models import Customer, Message
from campaigner.dispatch import DispatchReport
from campaigner.runtime import Runtime

TEMPLATE = "Thanks {{ first_name }}, share {{ referral_code }}"
CODE = re.compile(r"share ([A-Z0-9]{8})$")


class Killed(BaseException):
    """The process dies here: what it had not committed is rolled back."""


def shop(project: Project, customers: int, *, batch_size: int = 500) -> None:
    """`customers` customers with a paid order each; two referral texts per order."""
    project.settings = project.settings.model_copy(
        update={"sending": project.settings.sending.model_copy(update={"batch_size": batch_size})}
    )
    project.write_template("thank_you.j2", TEMPLATE)
    (project.settings.paths.rules / "again.toml").write_text(THANK_YOU_RULE, encoding="utf-8")
    for n in range(1, customers + 1):
        project.paid_order(f"Sara{n}")


def stored_codes(sessions: sessionmaker[Session]) -> dict[str, str | None]:
    with sessions() as session:
        return dict(session.execute(select(Customer.first_name, Customer.referral_code)).all())


def check_every_text_shows_its_customers_code(project: Project, expected: int) -> None:
    codes = stored_codes(project.sessions)
    sent = [message.text for message in project.gateway.sent]
    assert len(sent) == expected
    for text in sent:
        name = text.split(",")[0].removeprefix("Thanks ")
        found = CODE.search(text.splitlines()[0])
        assert found is not None and found.group(1) == codes[name], (text, codes)
    given = [code for code in codes.values() if code]
    assert len(given) == len(set(given)), "two customers share a code"


class Runtimes:
    """Runtimes (each with its own dispatcher) over the project, closed after the test."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.built: list[Runtime] = []

    def start(self) -> Runtime:
        self.built.append(self.project.runtime())
        return self.built[-1]


@pytest.fixture
def runtimes(project: Project) -> Iterator[Runtimes]:
    made = Runtimes(project)
    yield made
    for runtime in made.built:
        runtime.close()


def test_a_batch_stores_its_new_codes_with_one_update(
    project: Project, engine: Engine, runtimes: Runtimes
) -> None:
    """Regression: each new code cost a savepoint, an UPDATE and a re-read of the customer."""
    shop(project, 6)
    dispatcher = runtimes.start()
    dispatcher.plan()
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        report = dispatcher.dispatch()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert report.sent == 12
    storing = [s for s in statements if s.lstrip().upper().startswith("UPDATE CUSTOMERS")]
    assert len(storing) == 1, storing
    check_every_text_shows_its_customers_code(project, 12)


def test_a_code_taken_meanwhile_sends_the_batch_again_with_a_new_code(
    project: Project, runtimes: Runtimes, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop(project, 2)
    with project.sessions.begin() as session:
        session.execute(
            update(Customer).where(Customer.first_name == "Sara1").values(referral_code="TAKEN234")
        )
    proposals = iter(["TAKEN234"])  # then random codes
    real = referrals.random_code
    monkeypatch.setattr(referrals, "random_code", lambda n: next(proposals, None) or real(n))
    dispatcher = runtimes.start()
    dispatcher.plan()
    first = dispatcher.dispatch()
    assert (first.claimed, first.requeued, first.sent) == (4, 4, 0)
    assert project.gateway.sent == []
    assert stored_codes(project.sessions)["Sara2"] is None
    dispatcher.drain()
    check_every_text_shows_its_customers_code(project, 4)
    assert stored_codes(project.sessions)["Sara1"] == "TAKEN234"


def test_a_batch_killed_before_it_commits_leaves_no_code_and_sends_nothing(
    project: Project, runtimes: Runtimes, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop(project, 3)

    def killed(*args: object) -> None:
        raise Killed

    monkeypatch.setattr(dispatcher_module, "write_claimed", killed)
    dispatcher = runtimes.start()
    dispatcher.plan()
    with pytest.raises(Killed):
        dispatcher.dispatch()
    assert project.gateway.sent == []
    assert set(stored_codes(project.sessions).values()) == {None}
    with project.sessions() as session:
        assert set(session.scalars(select(Message.status))) == {"queued"}
    monkeypatch.undo()
    runtimes.start().drain()
    check_every_text_shows_its_customers_code(project, 6)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_dispatchers_racing_for_one_customer_send_one_code(
    project: Project, runtimes: Runtimes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One message per batch: the customer's two texts go to two dispatchers. The second one
    # sends while the first is between issuing its code and storing it.
    shop(project, 1, batch_size=1)
    first, second = runtimes.start(), runtimes.start()
    first.plan()
    real = referrals.random_code
    raced: list[DispatchReport] = []
    started: list[bool] = []

    def meanwhile(length: int) -> str:
        if not started:  # the first code of the first dispatcher: the other one goes first
            started.append(True)
            raced.append(second.dispatch())
        return real(length)

    monkeypatch.setattr(referrals, "random_code", meanwhile)
    lost = first.dispatch()
    assert raced[0].sent == 1
    assert (lost.claimed, lost.requeued, lost.sent) == (1, 1, 0)
    assert first.drain().sent == 1
    check_every_text_shows_its_customers_code(project, 2)
