"""Alembic migrations, driven from code so that `campaigner db upgrade` needs no alembic.ini."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from campaigner.errors import SchemaOutdated

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    script = ScriptDirectory(str(MIGRATIONS))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def ensure_current(engine: Engine) -> None:
    """Refuse to work on a schema older (or newer) than this code expects."""
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        state = "is empty" if current is None else f"is at revision {current}, expected {head}"
        raise SchemaOutdated(f"the database schema {state}: run `campaigner db upgrade` first")
