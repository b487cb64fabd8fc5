from datetime import timedelta

import pytest
from report_scenario import at, fill, phone
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.db.models import NpsResponse
from campaigner.reports import parse_score, record_nps_reply


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("9", 9),
        (" 10 ", 10),
        ("0", 0),
        ("۱۰", 10),
        ("٧", 7),
        ("(8).", 8),
        ("«۶»", 6),
        ("05", 5),
        ("11", None),
        ("9/10", None),
        ("9 thanks", None),
        ("", None),
        ("-3", None),
        ("+9", None),
        ("نه", None),
    ],
)
def test_parse_score(text: str, score: int | None) -> None:
    assert parse_score(text) == score


def test_a_reply_counts_once_per_survey_and_the_latest_wins(
    sessions: sessionmaker[Session],
) -> None:
    windows = {"nps": timedelta(days=3)}
    with sessions.begin() as session:
        fill(session)

        def reply(customer: int, text: str, received_day: int, hour: int = 10) -> bool:
            return record_nps_reply(
                session,
                phone=phone(customer),
                text=text,
                received_at=at(3, received_day, hour),
                response_windows=windows,
            )

        assert reply(1, "8", 16)
        assert reply(1, "۱۰", 17)  # changed their mind: replaces
        assert reply(1, "3", 16, 12)  # arrived late but was sent earlier: keeps the 10
        assert not reply(1, "9", 18, 11)  # 3 days and 1 hour after the survey
        assert not reply(1, "7", 14)  # before the survey was sent
        assert not reply(4, "9", 5)  # c4's survey went out on 03-01: 4 days
        assert not record_nps_reply(
            session,
            phone=phone(1),
            text="9",
            received_at=at(3, 16),
            response_windows={},
        )
        # thank_you messages are not surveys, however recent
        assert not record_nps_reply(
            session,
            phone=phone(2),
            text="9",
            received_at=at(3, 4),
            response_windows=windows,
        )
    with sessions() as session:
        rows = session.execute(
            select(
                NpsResponse.message_id,
                NpsResponse.customer_id,
                NpsResponse.rule,
                NpsResponse.phone,
                NpsResponse.score,
                NpsResponse.received_at,
            )
        ).all()
    assert [tuple(row) for row in rows] == [(31, 1, "nps", phone(1), 10, at(3, 17))]
