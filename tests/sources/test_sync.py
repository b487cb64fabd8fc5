"""Sync from a WooCommerce-like shop database on SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    create_mariadb_database,
    create_pg_database,
    drop_mariadb_database,
    drop_pg_database,
    require_mariadb,
    require_postgres,
)
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    create_engine,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session, sessionmaker

from campaigner.clock import FixedClock
from campaigner.config import Settings, SourceSettings
from campaigner.db.models import Customer, CustomerDate, Order
from campaigner.errors import CampaignerError
from campaigner.sources import SyncFailed, sync_source

shop = MetaData()
wp_users = Table(
    "wp_users",
    shop,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("user_login", String(60)),
    Column("user_registered", DateTime),
)
wp_usermeta = Table(
    "wp_usermeta",
    shop,
    Column("umeta_id", Integer, primary_key=True),
    Column("user_id", BigInteger),
    Column("meta_key", String(255)),
    Column("meta_value", Text),
)
wp_wc_orders = Table(
    "wp_wc_orders",
    shop,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("status", String(20)),
    Column("currency", String(10)),
    Column("total_amount", Numeric(26, 8)),
    Column("customer_id", BigInteger),
    Column("date_updated_gmt", DateTime),
    Column("date_paid_gmt", DateTime, nullable=True),
)

CUSTOMERS_QUERY = """
SELECT u.id AS user_id,
       MAX(CASE WHEN m.meta_key = 'first_name' THEN m.meta_value END) AS first_name,
       MAX(CASE WHEN m.meta_key = 'last_name' THEN m.meta_value END) AS last_name,
       MAX(CASE WHEN m.meta_key = 'billing_phone' THEN m.meta_value END) AS billing_phone,
       MAX(CASE WHEN m.meta_key = 'birthday' THEN m.meta_value END) AS birthday,
       MAX(CASE WHEN m.meta_key = 'sms_consent' THEN m.meta_value END) AS sms_consent,
       MAX(CASE WHEN m.meta_key = 'last_update' THEN m.meta_value END) AS last_update
FROM wp_users u LEFT JOIN wp_usermeta m ON m.user_id = u.id
GROUP BY u.id
"""

USERS = [
    # id, first name, phone, birthday (Jalali, as the shop's plugin stores it), consent
    (1, "علی", "09121234567", "1370/01/01", "yes"),
    (2, "Sara", "۰۹۳۵۱۲۳۴۵۶۷", "", "no"),
    (3, "Bad", "12", "", "yes"),
    (4, "Olivia", "+14162345678", "", "yes"),
]
T0 = datetime(2026, 1, 1, 12, 0)
ORDERS = [
    # id, status, total, customer, updated, paid
    (101, "wc-completed", "1250000.00", 1, T0, datetime(2026, 1, 10, 8, 30)),
    (102, "wc-shipped", "500000.00", 1, T0, datetime(2026, 2, 1, 6, 0)),
    (103, "wc-cancelled", "100.00", 2, T0, None),
    (104, "wc-completed", "100.00", 3, datetime(2026, 1, 2), datetime(2026, 1, 2)),
    (105, "wc-mystery", "100.00", 4, datetime(2026, 1, 3), datetime(2026, 1, 3)),
]


def _fill(url: str) -> None:
    engine = create_engine(url)
    shop.create_all(engine)
    with engine.begin() as connection:
        for user_id, first_name, phone, birthday, consent in USERS:
            connection.execute(insert(wp_users).values(id=user_id, user_login=f"u{user_id}"))
            meta = {
                "first_name": first_name,
                "billing_phone": phone,
                "birthday": birthday,
                "sms_consent": consent,
                "last_update": "1767225600",
            }
            connection.execute(
                insert(wp_usermeta),
                [{"user_id": user_id, "meta_key": k, "meta_value": v} for k, v in meta.items()],
            )
        connection.execute(
            insert(wp_wc_orders),
            [
                {
                    "id": order_id,
                    "status": status,
                    "currency": "IRT",
                    "total_amount": Decimal(total),
                    "customer_id": customer,
                    "date_updated_gmt": updated,
                    "date_paid_gmt": paid,
                }
                for order_id, status, total, customer, updated, paid in ORDERS
            ],
        )
    engine.dispose()


@pytest.fixture(params=["sqlite", "mariadb", "postgresql"])
def shop_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A WooCommerce-like shop database, created for the test and dropped after it."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'shop.db'}"
        _fill(url)
        yield url
        return
    if request.param == "mariadb":
        require_mariadb()
        url = create_mariadb_database()
        drop = drop_mariadb_database
    else:
        require_postgres()
        url = create_pg_database()
        drop = drop_pg_database
    try:
        _fill(url)
        yield url
    finally:
        drop(url)


def woo_source(url: str, **overrides: Any) -> SourceSettings:
    data: dict[str, Any] = {
        "name": "woocommerce",
        "url": url,
        "timezone": "UTC",
        "batch_size": 2,
        "customers": {
            "query": CUSTOMERS_QUERY,
            "cursor": "last_update",
            "birthday_format": "jalali",
            "columns": {
                "id": "user_id",
                "first_name": "first_name",
                "last_name": "last_name",
                "phone": "billing_phone",
                "birthday": "birthday",
                "consent": "sms_consent",
            },
            "consent_values": {"yes": True, "no": False},
        },
        "orders": {
            "table": "wp_wc_orders",
            "cursor": "date_updated_gmt",
            "columns": {
                "id": "id",
                "customer_id": "customer_id",
                "total": "total_amount",
                "status": "status",
                "paid_at": "date_paid_gmt",
            },
            "status_values": {"wc-shipped": "paid"},
        },
    }
    data.update(overrides)
    return SourceSettings.model_validate(data)


CLOCK = FixedClock(datetime(2026, 3, 1, tzinfo=UTC))


def run(
    sessions: sessionmaker[Session], source: SourceSettings, settings: Settings, **kw: Any
) -> Any:
    return sync_source(sessions, source, settings, clock=CLOCK, **kw)


def test_first_sync_loads_good_rows_and_reports_bad_ones(
    shop_url: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    seen: list[tuple[str, int, int | None]] = []
    report = run(sessions, woo_source(shop_url), settings, progress=lambda *a: seen.append(a))
    customers, orders = report.kinds["customers"], report.kinds["orders"]
    assert (customers.read, customers.inserted, customers.rejected) == (4, 3, 1)
    assert (orders.read, orders.inserted, orders.rejected) == (5, 3, 2)
    problems = {(e.kind, e.row_id): e.reason for e in report.errors}
    assert "invalid phone number '12'" in problems[("customers", "3")]
    assert problems[("orders", "104")] == "unknown customer '3'"
    assert "wc-mystery" in problems[("orders", "105")]
    assert ("orders", 5, 5) in seen  # progress knows the total up front

    with sessions() as session:
        found = {c.external_id: c for c in session.scalars(select(Customer))}
        by_id = {o.external_id: o for o in session.scalars(select(Order))}
    ali = found["1"]
    assert (ali.first_name, ali.phone, ali.calendar) == ("علی", "+989121234567", "jalali")
    assert ali.birth_jalali_md == 101 and ali.marketing_consent is True
    assert found["2"].phone == "+989351234567" and found["2"].marketing_consent is False
    assert by_id["102"].status == "paid"  # mapped from wc-shipped
    assert by_id["101"].paid_at == datetime(2026, 1, 10, 8, 30, tzinfo=UTC)
    assert by_id["103"].status == "cancelled"
    assert (ali.orders_count, ali.total_spent) == (2, Decimal("1750000"))


def test_incremental_sync_picks_up_a_new_order_and_an_edited_phone(
    shop_url: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    source = woo_source(shop_url)
    run(sessions, source, settings)
    quiet = run(sessions, source, settings)
    assert (quiet.kinds["customers"].read, quiet.kinds["orders"].read) == (0, 0)

    engine = create_engine(shop_url)
    with engine.begin() as connection:
        connection.execute(
            update(wp_usermeta)
            .where(wp_usermeta.c.user_id == 2, wp_usermeta.c.meta_key == "billing_phone")
            .values(meta_value="09129999999")
        )
        connection.execute(
            update(wp_usermeta)
            .where(wp_usermeta.c.user_id == 2, wp_usermeta.c.meta_key == "last_update")
            .values(meta_value="1767312000")
        )
        connection.execute(
            insert(wp_wc_orders).values(
                id=106,
                status="wc-completed",
                currency="IRT",
                total_amount=Decimal("300000"),
                customer_id=2,
                date_updated_gmt=datetime(2026, 2, 28, 10, 0),
                date_paid_gmt=datetime(2026, 2, 28, 10, 0),
            )
        )
    engine.dispose()

    report = run(sessions, source, settings)
    assert (report.kinds["customers"].read, report.kinds["customers"].updated) == (1, 1)
    assert (report.kinds["orders"].read, report.kinds["orders"].inserted) == (1, 1)
    with sessions() as session:
        sara = session.scalars(select(Customer).where(Customer.external_id == "2")).one()
    assert sara.phone == "+989129999999"
    assert sara.orders_count == 1 and sara.last_order_at == datetime(2026, 2, 28, 10, tzinfo=UTC)


def test_full_sync_reads_everything_again(
    shop_url: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    source = woo_source(shop_url)
    run(sessions, source, settings)
    report = run(sessions, source, settings, full=True)
    customers, orders = report.kinds["customers"], report.kinds["orders"]
    assert (customers.read, customers.unchanged, customers.rejected) == (4, 3, 1)
    assert (orders.read, orders.unchanged, orders.inserted) == (5, 3, 0)


def _install_failing_trigger(sessions: sessionmaker[Session]) -> str:
    with sessions.begin() as session:
        if session.get_bind().dialect.name == "sqlite":
            session.execute(
                text(
                    "CREATE TRIGGER fail_103 BEFORE INSERT ON orders "
                    "WHEN NEW.external_id = '103' BEGIN SELECT RAISE(ABORT, 'disk full'); END"
                )
            )
            return "DROP TRIGGER fail_103"
        session.execute(
            text(
                "CREATE FUNCTION fail_103() RETURNS trigger AS $$ BEGIN "
                "IF NEW.external_id = '103' THEN RAISE EXCEPTION 'disk full'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
        )
        session.execute(
            text(
                "CREATE TRIGGER fail_103 BEFORE INSERT ON orders "
                "FOR EACH ROW EXECUTE FUNCTION fail_103()"
            )
        )
        return "DROP TRIGGER fail_103 ON orders; DROP FUNCTION fail_103()"


def test_a_failing_batch_leaves_nothing_half_applied(
    tmp_path: Path, sessions: sessionmaker[Session], settings: Settings
) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    _fill(url)
    source = woo_source(url)
    drop = _install_failing_trigger(sessions)
    try:
        # Batches of 2 in cursor order: (101, 102) land, (103, 104) fails on 103.
        with pytest.raises(SyncFailed, match="disk full") as failed:
            run(sessions, source, settings)
        assert failed.value.report.kinds["orders"].read == 2
        with sessions() as session:
            assert set(session.scalars(select(Order.external_id))) == {"101", "102"}
    finally:
        with sessions.begin() as session:
            for statement in drop.split("; "):
                session.execute(text(statement))
    report = run(sessions, source, settings)
    assert report.kinds["orders"].read == 3  # continues after the last batch that landed
    with sessions() as session:
        assert set(session.scalars(select(Order.external_id))) == {"101", "102", "103"}


def test_unreachable_source_names_the_host_but_not_the_password(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    source = woo_source("mysql+pymysql://shop:s3cret-pw@127.0.0.1:1/wordpress")
    with pytest.raises(CampaignerError, match=r"127\.0\.0\.1:1") as failed:
        run(sessions, source, settings)
    assert "s3cret" not in str(failed.value)


def test_cursor_values_are_bound_not_formatted(
    tmp_path: Path, sessions: sessionmaker[Session], settings: Settings
) -> None:
    url = f"sqlite:///{tmp_path / 'odd.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE people (code TEXT, mobile TEXT)"))
        connection.execute(
            text("INSERT INTO people VALUES ('o''brien', '09121234567'), ('x''; --', NULL)")
        )
    engine.dispose()
    source = SourceSettings.model_validate(
        {
            "name": "odd",
            "url": url,
            "batch_size": 1,
            "customers": {"table": "people", "columns": {"id": "code", "phone": "mobile"}},
        }
    )
    assert run(sessions, source, settings).kinds["customers"].inserted == 2
    with sessions() as session:
        assert set(session.scalars(select(Customer.external_id))) == {"o'brien", "x'; --"}


def test_source_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="either `table` or `query`"):
        woo_source("sqlite:///x.db", orders={"table": "a", "query": "SELECT 1"})
    with pytest.raises(ValueError, match="unknown field"):
        woo_source("sqlite:///x.db", orders={"table": "a", "columns": {"colour": "c"}})


def test_columns_are_matched_forgivingly_and_unread_ones_named(
    tmp_path: Path, sessions: sessionmaker[Session], settings: Settings
) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text('CREATE TABLE people (id TEXT, "First Name" TEXT, "SMS Consent" TEXT, notes TEXT)')
        )
        connection.execute(text("INSERT INTO people VALUES ('p1', 'Sara', 'yes', 'met at fair')"))
    engine.dispose()
    spec: dict[str, Any] = {"table": "people", "columns": {"id": "id"}}
    source = SourceSettings.model_validate({"name": "crm", "url": url, "customers": spec})
    report = run(sessions, source, settings)
    assert report.unmapped == {"customers": ["notes"]}
    assert "customers column(s) not read: 'notes'" in report.summary()
    with sessions() as session:
        sara = session.scalars(select(Customer)).one()
    assert (sara.first_name, sara.marketing_consent) == ("Sara", True)

    strict = SourceSettings.model_validate(
        {"name": "crm", "url": url, "customers": {**spec, "strict": True}}
    )
    with pytest.raises(CampaignerError, match="column\\(s\\) 'notes' match no field"):
        run(sessions, strict, settings, full=True)


def test_the_id_column_is_found_by_its_name_as_the_other_columns_are(
    tmp_path: Path, sessions: sessionmaker[Session], settings: Settings
) -> None:
    # Seen: `table = "people"` with an `id` column (the commonest name) failed with
    # "reading failed: no such column: external_id", though `id` names the id everywhere else.
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text('CREATE TABLE people ("Customer ID" TEXT, id TEXT, Mobile TEXT)'))
        connection.execute(text("INSERT INTO people VALUES ('x9', 'p1', '09121234567')"))
        connection.execute(text("CREATE TABLE notes (body TEXT)"))
    engine.dispose()
    source = SourceSettings.model_validate(
        {"name": "crm", "url": url, "customers": {"table": "people"}}
    )
    report = run(sessions, source, settings)
    assert (report.errors, report.unmapped) == ([], {"customers": ["Customer ID"]})
    with sessions() as session:
        person = session.scalars(select(Customer)).one()
    assert (person.external_id, person.phone) == ("p1", "+989121234567")  # id before customer_id

    nameless = SourceSettings.model_validate(
        {"name": "crm", "url": url, "customers": {"table": "notes"}}
    )
    with pytest.raises(CampaignerError, match=r"no id column among 'body'; name it in"):
        run(sessions, nameless, settings)


def test_own_dates_are_mapped_from_a_source_and_bad_ones_reported(
    tmp_path: Path, sessions: sessionmaker[Session], settings: Settings
) -> None:
    url = f"sqlite:///{tmp_path / 'kids.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE parents (id TEXT, kid_born TEXT, wedding TEXT)"))
        connection.execute(
            text(
                "INSERT INTO parents VALUES ('p1', '1398/05/20', '2016-07-05'),"
                " ('p2', '1398/13/01', NULL)"
            )
        )
    engine.dispose()
    source = SourceSettings.model_validate(
        {
            "name": "kids",
            "url": url,
            "customers": {
                "table": "parents",
                "columns": {
                    "id": "id",
                    "date:child_birthday": "kid_born",
                    "date:anniversary": "wedding",
                },
            },
        }
    )
    report = run(sessions, source, settings)
    assert report.kinds["customers"].inserted == 1
    [problem] = report.errors
    assert "date:child_birthday: bad date '1398/13/01'" in str(problem)
    with sessions() as session:
        stored = {(row.name, row.date) for row in session.scalars(select(CustomerDate))}
    assert stored == {("child_birthday", date(2019, 8, 11)), ("anniversary", date(2016, 7, 5))}
    with pytest.raises(ValueError, match="unknown field"):
        SourceSettings.model_validate(
            {"name": "x", "url": url, "orders": {"table": "a", "columns": {"date:x": "c"}}}
        )


def test_a_multi_line_database_error_is_one_line_without_the_password(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    """PostgreSQL answers a bad query with the error, then `LINE 1: …` and a caret line, and a
    raised error with DETAIL and HINT lines: the sync error keeps only the first."""
    require_postgres()
    url = create_pg_database()
    try:
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE people (id integer, phone text)"))
            connection.execute(text("INSERT INTO people VALUES (1, '09121234567')"))
            connection.execute(
                text(
                    "CREATE FUNCTION shop_fails() RETURNS integer AS $$ BEGIN "
                    "RAISE EXCEPTION 'shop says no' USING DETAIL = 'a second line', "
                    "HINT = 'a third line'; END $$ LANGUAGE plpgsql"
                )
            )
        engine.dispose()
        queries = {
            "shop says no": "SELECT id, phone, shop_fails() AS n FROM people",
            "does not exist": "SELECT id, no_such_column FROM people",
        }
        for error, query in queries.items():
            source = SourceSettings.model_validate(
                {
                    "name": "shop",
                    "url": url.replace("postgres@", "postgres:pw-1234@"),
                    "customers": {"query": query, "columns": {"id": "id"}},
                }
            )
            with pytest.raises(CampaignerError) as failed:
                run(sessions, source, settings)
            message = str(failed.value)
            assert message.startswith("source 'shop' customers: reading failed: ")
            assert error in message
            assert "\n" not in message and "LINE 1" not in message and "DETAIL" not in message
            assert "pw-1234" not in message
    finally:
        drop_pg_database(url)


@pytest.mark.parametrize(
    "url",
    [
        "mysql://shop:s3cret-pw@127.0.0.1:1/wordpress",
        "postgresql://shop:s3cret-pw@127.0.0.1:1/shop",
    ],
)
def test_a_url_without_a_driver_uses_the_installed_one(
    sessions: sessionmaker[Session], settings: Settings, url: str
) -> None:
    # `mysql://` is how a shop owner writes it; SQLAlchemy's default driver for it (MySQLdb)
    # is not installed, and the sync ended in a ModuleNotFoundError traceback.
    with pytest.raises(CampaignerError, match=r"cannot connect to 127\.0\.0\.1:1") as failed:
        run(sessions, woo_source(url), settings)
    assert "s3cret" not in str(failed.value)


def test_a_driver_that_is_not_installed_is_one_line(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    source = woo_source("mysql+mysqldb://shop:s3cret-pw@127.0.0.1:1/wordpress")
    with pytest.raises(CampaignerError, match="no database driver for 'mysql\\+mysqldb'"):
        run(sessions, source, settings)


def test_a_name_longer_than_its_column_is_shortened_and_its_customer_kept(
    shop_url: str, sessions: sessionmaker[Session], settings: Settings
) -> None:
    # WordPress keeps usermeta in a LONGTEXT: a first name has no length limit there.
    long_name = "محمّد‌رضا " * 40
    engine = create_engine(shop_url)
    with engine.begin() as connection:
        connection.execute(
            update(wp_usermeta)
            .where(wp_usermeta.c.user_id == 1, wp_usermeta.c.meta_key == "first_name")
            .values(meta_value=long_name)
        )
    engine.dispose()
    report = run(sessions, woo_source(shop_url), settings)
    customers = report.kinds["customers"]
    assert (customers.inserted, customers.rejected, customers.shortened) == (3, 1, 1)
    assert [(w.kind, w.row_id) for w in report.warnings] == [("customers", "1")]
    assert report.warnings[0].reason == "first_name of 399 characters cut to 128"
    assert (
        "customers 4 read: 3 new, 0 updated, 0 unchanged, 1 rejected, warning: 1 value(s) "
        "too long, shortened" in report.summary()
    )
    with sessions() as session:
        ali = session.scalars(select(Customer).where(Customer.external_id == "1")).one()
    assert ali.first_name == " ".join(["محمّد‌رضا"] * 40)[:128]
    assert ali.orders_count == 2  # and the orders found their customer
