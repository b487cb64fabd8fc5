"""NPS replies: a bare 0-10 answer to a survey message becomes a score.

One score per survey message. A later reply inside the response window replaces the earlier
one ("8" then "9, sorry" means 9): the customer's last word is their answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigner.customers.phones import to_ascii_digits
from campaigner.db.models import Message, MessageStatus, NpsResponse

_SCORE = re.compile(r"^[^\w+\-]*(\d{1,2})[\W_]*$")  # a sign is not punctuation: "-3" is no score
SURVEY_STATUSES = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.UNDELIVERED)


def parse_score(text: str) -> int | None:
    """The 0-10 score in a reply such as ' ۹ ', '10!' or '(7)'; None for anything else."""
    match = _SCORE.match(to_ascii_digits(text).strip())
    if not match:
        return None
    score = int(match.group(1))
    return score if 0 <= score <= 10 else None


def record_nps_reply(
    session: Session,
    *,
    phone: str,
    text: str,
    received_at: datetime,
    response_windows: Mapping[str, timedelta],
) -> bool:
    """Record `text` as a score if it is one and answers a recent survey sent to `phone`.

    `response_windows` maps each nps_survey rule to how long after sending a reply still
    counts. The most recent survey still open gets the score. Returns whether it was recorded.
    """
    score = parse_score(text)
    if score is None or not response_windows:
        return False
    longest = max(response_windows.values())
    candidates = session.execute(
        select(Message.id, Message.rule, Message.customer_id, Message.sent_at)
        .where(
            Message.phone == phone,
            Message.rule.in_(list(response_windows)),
            Message.status.in_(SURVEY_STATUSES),
            Message.sent_at <= received_at,
            Message.sent_at >= received_at - longest,
        )
        .order_by(Message.sent_at.desc(), Message.id.desc())
    ).all()
    survey = next(
        (row for row in candidates if row.sent_at >= received_at - response_windows[row.rule]),
        None,
    )
    if survey is None:
        return False
    response = session.scalar(select(NpsResponse).where(NpsResponse.message_id == survey.id))
    if response is None:
        session.add(
            NpsResponse(
                customer_id=survey.customer_id,
                phone=phone,
                rule=survey.rule,
                message_id=survey.id,
                score=score,
                received_at=received_at,
            )
        )
    elif response.received_at <= received_at:
        response.score = score
        response.received_at = received_at
    session.flush()
    return True
