"""A dispatch batch issues its coupons together: a code taken meanwhile sends nothing of the
batch, stores none of its coupons, and the next pass sends each message once with new codes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from conftest import Project
from sqlalchemy import select

from campaigner.db.models import Coupon, Message, MessageStatus
from campaigner.messages import coupons

RULE = (
    'trigger = "post_purchase"\ntemplate = "thank_you.j2"\ndelay = "2h"\n'
    'coupon = { percent = 10, valid_days = 7, prefix = "THX" }\n'
)


def test_a_code_taken_meanwhile_sends_none_of_the_batch_and_the_next_pass_sends_each_once(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.write_rule(RULE)
    project.write_template("thank_you.j2", "Thanks {{ first_name }}: {{ coupon.code }}")
    for name in ("Sara", "Reza", "Mina"):
        project.paid_order(name)
    with project.sessions.begin() as session:  # another dispatcher's coupon, just stored
        session.add(
            Coupon(
                code="THX-TAKE-NAAA",
                customer_id=1,
                rule="other",
                percent=5,
                expires_at=project.clock.now() + timedelta(days=1),
            )
        )
    # The second code of the first batch is that one; every later code is new.
    proposals: Iterator[str] = iter(["AAAABBBB", "TAKENAAA", "CCCCDDDD"])
    fresh = (f"NEW{n:05d}".replace("0", "Z").replace("1", "Y") for n in range(100))
    monkeypatch.setattr(coupons, "random_code", lambda length: next(proposals, None) or next(fresh))
    runtime = project.runtime()
    runtime.plan()

    first = runtime.dispatcher.dispatch_once()

    assert (first.claimed, first.sent, first.requeued) == (3, 0, 3)
    assert project.gateway.sent == []
    with project.sessions() as session:
        assert session.scalars(select(Coupon.code)).all() == ["THX-TAKE-NAAA"]
        statuses = session.scalars(select(Message.status)).all()
        assert statuses == [MessageStatus.QUEUED] * 3

    second = runtime.dispatcher.dispatch_once()

    assert (second.claimed, second.sent) == (3, 3)
    with project.sessions() as session:
        rows = session.execute(
            select(Coupon.message_id, Coupon.code).where(Coupon.rule == "thank_you")
        )
        stored = {message_id: code for message_id, code in rows}
    texts = {message.id: message.text for message in project.gateway.sent}
    assert len(project.gateway.sent) == len(texts) == 3
    assert set(stored) == set(texts)
    for message_id, text in texts.items():
        assert text.splitlines()[0].endswith(f": {stored[message_id]}")
    assert "THX-TAKE-NAAA" not in stored.values()
    assert runtime.dispatcher.dispatch_once().claimed == 0
