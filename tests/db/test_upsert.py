from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.db.models import Customer
from campaigner.db.upsert import upsert

NOW = datetime(2026, 3, 20, 3, 0, tzinfo=UTC)
customers = cast(Table, Customer.__table__)


def rows(*people: tuple[str, str]) -> list[dict[str, object]]:
    return [
        {"external_id": key, "first_name": name, "created_at": NOW, "updated_at": NOW}
        for key, name in people
    ]


def test_counts_inserted_and_updated_from_the_statement(sessions: sessionmaker[Session]) -> None:
    """The same instant both times, so a row's created_at cannot tell new from old."""
    with sessions.begin() as session:
        first = upsert(session, customers, rows(("a", "Sara"), ("b", "Ali")), "external_id",
                       ["first_name"], also_set=["updated_at"])  # fmt: skip
    assert (first.inserted, first.updated) == (2, 0)
    with sessions.begin() as session:
        again = upsert(
            session,
            customers,
            rows(("a", "Sara"), ("b", "Reza"), ("c", "Maryam"), ("d", "Omid")),
            "external_id",
            ["first_name"],
            also_set=["updated_at"],
        )
    assert (again.inserted, again.updated) == (2, 1)  # c, d new; b renamed; a unchanged
    with sessions() as session:
        names = dict(session.execute(select(Customer.external_id, Customer.first_name)).all())
    assert names == {"a": "Sara", "b": "Reza", "c": "Maryam", "d": "Omid"}
