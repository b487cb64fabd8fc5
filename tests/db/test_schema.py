from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import create_pg_database, drop_pg_database, require_postgres
from sqlalchemy import Engine, inspect, text

from campaigner.db import create_engine_for, ensure_current, upgrade
from campaigner.db.models import Base
from campaigner.db.schema import current_revision, head_revision
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
