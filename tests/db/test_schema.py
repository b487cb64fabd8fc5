from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import (
    create_pg_database,
    drop_pg_database,
    require_postgres,
)
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session

from campaigner.db import create_engine_for, ensure_current, upgrade
from campaigner.db.models import ORDERS_BY_CUSTOMER, Base, Customer, Order, OrderItem
from campaigner.db.schema import alembic_config, current_revision, head_revision
from campaigner.errors import SchemaOutdated

TABLES = {
    "customers",
    "orders",
    "messages",
    "opt_outs",
    "coupons",
    "inbound_messages",
    "sync_state",
    "nps_responses",
    "order_items",
    "shop_events",
    "customer_dates",
    "announcements",
    "draws",
    "draw_winners",
    "order_item_categories",
}


def check_fresh_database(url: str) -> None:
    engine = create_engine_for(url)
    try:
        with pytest.raises(SchemaOutdated, match="campaigner db upgrade"):
            ensure_current(engine)
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        ensure_current(engine)
        inspector = inspect(engine)
        assert set(inspector.get_table_names()) >= TABLES
        uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("messages")}
        assert ("rule", "customer_id", "occurrence_key") in uniques
        upgrade(engine)  # a second upgrade is a no-op
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_migrations_from_empty_sqlite(tmp_path: Path) -> None:
    check_fresh_database(f"sqlite:///{tmp_path / 'fresh.db'}")


def test_migrations_from_empty_postgresql() -> None:
    require_postgres()
    url = create_pg_database()
    try:
        check_fresh_database(url)
    finally:
        drop_pg_database(url)


def test_sqlite_pragmas(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'p.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_migrations_build_exactly_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_timezone_index_migrates_up_and_down_with_customers(db_url: str) -> None:
    """On a database at 0003 with customers in it, as a shop upgrading would have."""
    engine = create_engine_for(db_url)
    try:
        command.downgrade(alembic_config(engine), "0003")
        assert "ix_customers_timezone" not in _indexes(engine, "customers")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO customers (external_id, first_name, last_name, calendar,"
                    " timezone, locale, tags, marketing_consent, city, orders_count,"
                    " total_spent, created_at, updated_at) VALUES ('a', '', '', 'jalali',"
                    " 'Asia/Tehran', 'fa', '', true, '', 0, 0, CURRENT_TIMESTAMP,"
                    " CURRENT_TIMESTAMP)"
                )
            )
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        assert "ix_customers_timezone" in _indexes(engine, "customers")
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM customers")).scalar() == 1
    finally:
        upgrade(engine)
        engine.dispose()


def _indexes(engine: Engine, table: str) -> set[str]:
    return {str(index["name"]) for index in inspect(engine).get_indexes(table)}


def test_segments_2_moves_the_scores_off_customers_and_back(db_url: str) -> None:
    """A shop upgrading with segments already computed keeps them, and a downgrade puts them
    back on the customers."""
    engine = create_engine_for(db_url)
    columns = (
        "external_id, first_name, last_name, calendar, timezone, locale, tags,"
        " marketing_consent, city, orders_count, total_spent, created_at, updated_at, segment,"
        " recency_score, frequency_score, monetary_score, segment_currency, segment_spent"
    )
    try:
        command.downgrade(alembic_config(engine), "occasions_1")
        with engine.begin() as connection:
            for external_id, scores in (("a", "'loyal', 4, 5, 3, 'USD', 12.5"),
                                        ("b", "'none', NULL, NULL, NULL, NULL, NULL")):  # fmt: skip
                connection.execute(
                    text(
                        f"INSERT INTO customers ({columns}) VALUES ('{external_id}', '', '',"
                        " 'jalali', 'Asia/Tehran', 'fa', '', true, '', 2, 0, CURRENT_TIMESTAMP,"
                        f" CURRENT_TIMESTAMP, {scores})"
                    )
                )
        upgrade(engine)
        with engine.connect() as connection:
            moved = connection.execute(
                text(
                    "SELECT c.external_id, s.orders, s.segment, s.recency_score, s.currency,"
                    " s.spent FROM customer_scores AS s JOIN customers AS c ON c.id = s.customer_id"
                )
            ).all()
        assert [tuple(row) for row in moved] == [("a", 2, "loyal", 4, "USD", 12.5)]
        assert "segment" not in {
            column["name"] for column in inspect(engine).get_columns("customers")
        }
        command.downgrade(alembic_config(engine), "occasions_1")
        with engine.connect() as connection:
            back = connection.execute(
                text(
                    "SELECT external_id, segment, monetary_score, segment_spent FROM customers"
                    " ORDER BY external_id"
                )
            ).all()
        assert [tuple(row) for row in back] == [("a", "loyal", 3, 12.5), ("b", "none", None, None)]
    finally:
        upgrade(engine)
        engine.dispose()


def test_items_stored_before_products_1_get_category_rows_folded_as_rules_are(
    db_url: str,
) -> None:
    """A shop upgrading with line items from sync or webhooks: its past orders count for
    "bought in a category" (Arabic ك/ي folded to Persian, a comma inside a name kept)."""
    engine = create_engine_for(db_url)
    try:
        command.downgrade(alembic_config(engine), "occasions_1")
        with Session(engine) as session, session.begin():
            customer = Customer(external_id="c1", first_name="", last_name="")
            order = Order(external_id="o1", customer=customer)
            session.add_all([customer, order])
            session.flush()
            session.add_all(
                [
                    OrderItem(order_id=order.id, line_no=1, categories=",كيك,tea%2C coffee,"),
                    OrderItem(order_id=order.id, line_no=2, categories=""),
                ]
            )
        upgrade(engine)
        with Session(engine) as session:
            items = session.scalars(select(OrderItem).order_by(OrderItem.line_no)).all()
            stored = [(i.categories, [c.category for c in i.category_rows]) for i in items]
        assert stored == [(",tea%2C coffee,کیک,", ["tea, coffee", "کیک"]), ("", [])]
    finally:
        upgrade(engine)
        engine.dispose()


def test_segments_3_indexes_the_payers_inputs_and_zeroes_a_payers_null_spend(
    db_url: str,
) -> None:
    """A shop upgrading with scores moved off `customers` (where spend could be NULL for a
    payer) gets spend 0, as the ranking always counted it, and the three partial indexes the
    thresholds walk; a downgrade drops them again."""
    engine = create_engine_for(db_url)
    threshold_indexes = {
        "ix_customer_scores_last_paid_at",
        "ix_customer_scores_orders",
        "ix_customer_scores_currency_spent",
    }
    try:
        command.downgrade(alembic_config(engine), "products_1")
        assert not threshold_indexes & _indexes(engine, "customer_scores")
        with Session(engine) as session, session.begin():
            for external_id in ("payer", "gone"):
                session.add(Customer(external_id=external_id, first_name="", last_name=""))
            session.flush()
            ids = dict(session.execute(select(Customer.external_id, Customer.id)).all())
            for external_id, orders in (("payer", 2), ("gone", 0)):
                session.execute(
                    text(
                        "INSERT INTO customer_scores (customer_id, orders, currency, spent,"
                        " segment) VALUES (:id, :orders, 'IRT', NULL, 'lost')"
                    ),
                    {"id": ids[external_id], "orders": orders},
                )
        upgrade(engine)
        assert threshold_indexes <= _indexes(engine, "customer_scores")
        with engine.connect() as connection:
            spent = connection.execute(
                text(
                    "SELECT c.external_id, s.spent FROM customer_scores AS s"
                    " JOIN customers AS c ON c.id = s.customer_id ORDER BY c.external_id"
                )
            ).all()
        assert [tuple(row) for row in spent] == [("gone", None), ("payer", 0)]
        command.downgrade(alembic_config(engine), "products_1")
        assert not threshold_indexes & _indexes(engine, "customer_scores")
    finally:
        upgrade(engine)
        engine.dispose()


def _index_columns(engine: Engine, table: str) -> dict[str, list[str]]:
    return {
        str(index["name"]): [str(column) for column in index["column_names"]]
        for index in inspect(engine).get_indexes(table)
    }


def check_segments_4(url: str) -> None:
    """A shop upgrading with orders gets the orders' index per customer as the model defines
    it, in place of the narrow one; a downgrade puts the narrow one back. Both ways the
    orders stay, and (MariaDB) the foreign key on customer_id always has an index."""
    wide = "ix_orders_" + "_".join(ORDERS_BY_CUSTOMER)
    narrow = "ix_orders_customer_id_paid_at"
    model = {str(index.name): [c.name for c in index.columns] for index in Order.__table__.indexes}
    assert model[wide] == list(ORDERS_BY_CUSTOMER)
    engine = create_engine_for(url)
    try:
        upgrade(engine)
        command.downgrade(alembic_config(engine), "segments_3")
        found = _index_columns(engine, "orders")
        assert (found.get(narrow), wide in found) == (["customer_id", "paid_at"], False)
        with Session(engine) as session, session.begin():
            customer = Customer(external_id="payer", first_name="", last_name="")
            session.add(customer)
            session.flush()
            session.execute(
                text(
                    "INSERT INTO orders (external_id, customer_id, total, currency, status,"
                    " paid_at, refunded, created_at, updated_at) VALUES ('o1', :id, 10, 'IRT',"
                    " 'paid', CURRENT_TIMESTAMP, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"id": customer.id},
            )
        upgrade(engine)
        found = _index_columns(engine, "orders")
        assert (found.get(wide), narrow in found) == (list(ORDERS_BY_CUSTOMER), False)
        command.downgrade(alembic_config(engine), "segments_3")
        found = _index_columns(engine, "orders")
        assert (found.get(narrow), wide in found) == (["customer_id", "paid_at"], False)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM orders")).scalar() == 1
    finally:
        upgrade(engine)
        engine.dispose()


def test_segments_4_widens_the_orders_index_per_customer(db_url: str) -> None:
    check_segments_4(db_url)


def test_segments_4_widens_the_orders_index_per_customer_on_mariadb(mariadb_url: str) -> None:
    check_segments_4(mariadb_url)


def check_segments_4_interrupted(url: str) -> None:
    """MariaDB commits each index statement on its own: killed after building one index and
    before stamping the version, an upgrade leaves both indexes at segments_3 (a downgrade
    likewise at segments_4). Run again, each finishes instead of failing on a duplicate
    index name."""
    wide = "ix_orders_" + "_".join(ORDERS_BY_CUSTOMER)
    narrow = "ix_orders_customer_id_paid_at"
    engine = create_engine_for(url)
    try:
        upgrade(engine)
        command.downgrade(alembic_config(engine), "segments_3")
        with engine.begin() as connection:
            connection.execute(
                text(f"CREATE INDEX {wide} ON orders ({', '.join(ORDERS_BY_CUSTOMER)})")
            )
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        found = _index_columns(engine, "orders")
        assert (found.get(wide), narrow in found) == (list(ORDERS_BY_CUSTOMER), False)
        with engine.begin() as connection:
            connection.execute(text(f"CREATE INDEX {narrow} ON orders (customer_id, paid_at)"))
        command.downgrade(alembic_config(engine), "segments_3")
        found = _index_columns(engine, "orders")
        assert (found.get(narrow), wide in found) == (["customer_id", "paid_at"], False)
    finally:
        upgrade(engine)
        engine.dispose()


def test_segments_4_runs_again_after_an_interruption(db_url: str) -> None:
    check_segments_4_interrupted(db_url)


def test_segments_4_runs_again_after_an_interruption_on_mariadb(mariadb_url: str) -> None:
    check_segments_4_interrupted(mariadb_url)


def check_segments_5(url: str) -> None:
    """The first paid order's time joins the segment inputs: added to a table with rows (they
    keep their scores, the new column empty), and dropped again by a downgrade."""
    engine = create_engine_for(url)
    try:
        upgrade(engine)
        command.downgrade(alembic_config(engine), "segments_4")
        assert "first_paid_at" not in {
            c["name"] for c in inspect(engine).get_columns("customer_scores")
        }
        with Session(engine) as session, session.begin():
            customer = Customer(external_id="payer", first_name="", last_name="")
            session.add(customer)
            session.flush()
            session.execute(
                text(
                    "INSERT INTO customer_scores (customer_id, orders, segment)"
                    " VALUES (:id, 2, 'loyal')"
                ),
                {"id": customer.id},
            )
        upgrade(engine)
        with engine.connect() as connection:
            row = connection.execute(
                text("SELECT orders, segment, first_paid_at FROM customer_scores")
            ).one()
            assert tuple(row) == (2, "loyal", None)
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        command.downgrade(alembic_config(engine), "segments_4")
        with engine.connect() as connection:
            assert connection.execute(text("SELECT segment FROM customer_scores")).scalar() == (
                "loyal"
            )
    finally:
        upgrade(engine)
        engine.dispose()


def test_segments_5_adds_the_first_paid_order_to_the_inputs(db_url: str) -> None:
    check_segments_5(db_url)


def test_segments_5_adds_the_first_paid_order_to_the_inputs_on_mariadb(mariadb_url: str) -> None:
    check_segments_5(mariadb_url)
