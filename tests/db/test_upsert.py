from datetime import UTC, date, datetime
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.db.models import Customer
from campaigner.db.upsert import insert_ignore, upsert

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


def test_a_column_left_out_takes_its_default(sessions: sessionmaker[Session]) -> None:
    """created_at's default is computed (a function): SQLAlchemy's own execution fills it."""
    with sessions.begin() as session:
        written = upsert(session, customers, [{"external_id": "a", "first_name": "Sara"}],
                         "external_id", ["first_name"])  # fmt: skip
    assert (written.inserted, written.updated) == (1, 0)
    with sessions() as session:
        stored = session.scalars(select(Customer)).one()
    assert (stored.first_name, stored.calendar) == ("Sara", "gregorian")
    assert stored.created_at is not None


def test_typed_values_come_back_as_written(sessions: sessionmaker[Session]) -> None:
    """Dates, flags and a time in another zone, converted column by column for the batch."""
    tehran = datetime(2026, 3, 20, 9, 0, tzinfo=ZoneInfo("Asia/Tehran"))
    batch = [
        {**row, "birthday": date(1990, 3, 21), "marketing_consent": True,
         "shop_modified_at": tehran}
        for row in rows(("a", "Sara"), ("b", "Ali"))
    ]  # fmt: skip
    columns = ["first_name", "birthday", "marketing_consent", "shop_modified_at"]
    with sessions.begin() as session:
        written = upsert(session, customers, batch, "external_id", columns,
                         newer="shop_modified_at")  # fmt: skip
    assert (written.inserted, written.updated) == (2, 0)
    with sessions() as session:
        found = {c.external_id: c for c in session.scalars(select(Customer))}
    assert found["a"].birthday == date(1990, 3, 21) and found["b"].marketing_consent is True
    assert found["a"].shop_modified_at == tehran  # 05:30 UTC, the same instant
    assert found["b"].last_name == ""  # a column not given takes its default


def test_rows_with_different_columns_each_write_their_own(sessions: sessionmaker[Session]) -> None:
    """Regression: the statement was built from the first row's columns, so a later row's
    other values were dropped without a word (its city never stored) or its missing ones
    written as defaults over what was stored. A row that leaves a column out says nothing
    about it: a new row takes the default, a stored one keeps its value."""
    with sessions.begin() as session:
        session.add(Customer(external_id="a", first_name="Sara", city="Yazd"))
    batch: list[dict[str, object]] = [
        {"external_id": "a", "first_name": "Sarah"},
        {"external_id": "b", "first_name": "Ali", "city": "Shiraz"},
        {"external_id": "c", "city": "Tabriz"},
        {"external_id": "d", "first_name": "Omid"},
    ]
    with sessions.begin() as session:
        written = upsert(session, customers, batch, "external_id", ["first_name", "city"])
    assert (written.inserted, written.updated) == (3, 1)
    with sessions() as session:
        stored = {
            key: (name, city)
            for key, name, city in session.execute(
                select(Customer.external_id, Customer.first_name, Customer.city)
            )
        }
    assert stored == {
        "a": ("Sarah", "Yazd"),
        "b": ("Ali", "Shiraz"),
        "c": ("", "Tabriz"),
        "d": ("Omid", ""),
    }


def test_insert_ignore_writes_each_rows_own_columns(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        added = insert_ignore(
            session,
            customers,
            [
                {"external_id": "a", "first_name": "Sara"},
                {"external_id": "b", "city": "Shiraz"},
                {"external_id": "a", "city": "Yazd"},  # collides: skipped
            ],
        )
    assert added == 2
    with sessions() as session:
        stored = set(
            session.execute(select(Customer.external_id, Customer.first_name, Customer.city))
        )
    assert stored == {("a", "Sara", ""), ("b", "", "Shiraz")}


def test_a_later_rows_extra_column_is_not_dropped(sessions: sessionmaker[Session]) -> None:
    """The silent case: before, Ali's city was dropped and Sara's stored city blanked."""
    with sessions.begin() as session:
        session.add(Customer(external_id="a", first_name="Sara", city="Yazd"))
    batch: list[dict[str, object]] = [
        {"external_id": "a", "first_name": "Sarah"},
        {"external_id": "b", "first_name": "Ali", "city": "Shiraz"},
    ]
    with sessions.begin() as session:
        upsert(session, customers, batch, "external_id", ["first_name", "city"])
    with sessions() as session:
        stored = set(session.execute(select(Customer.external_id, Customer.city)))
    assert stored == {("a", "Yazd"), ("b", "Shiraz")}
