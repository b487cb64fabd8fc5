"""Alembic migrations, driven from code so that `campaigner db upgrade` needs no alembic.ini."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from campaigner.db.engine import sqlite_file
from campaigner.errors import SchemaNewer, SchemaOutdated

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def _script() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS))


def head_revision() -> str:
    head = _script().get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    return {script.revision for script in _script().walk_revisions()}


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    refuse_newer(current_revision(engine))
    command.upgrade(alembic_config(engine), revision)


def refuse_newer(current: str | None) -> None:
    """A revision this code does not know comes from a newer Campaigner: migrating it (or
    working on it) could only do harm."""
    if current is not None and current not in known_revisions():
        raise SchemaNewer(
            f"this database was migrated by a newer Campaigner (revision {current}); "
            f"upgrade Campaigner"
        )


def missing_database(engine: Engine) -> str | None:
    """Why the database does not exist yet (a SQLite file not created), else None. Checked
    before connecting, since connecting would create an empty file."""
    path = sqlite_file(str(engine.url))
    if path is not None and not path.exists():
        return f"no database at {path} yet: run `campaigner db upgrade` to create it"
    return None


def ensure_current(engine: Engine) -> None:
    """Refuse to work on a schema older (or newer) than this code expects."""
    missing = missing_database(engine)
    if missing:
        raise SchemaOutdated(missing)
    current = current_revision(engine)
    refuse_newer(current)
    head = head_revision()
    if current != head:
        state = "is empty" if current is None else f"is at revision {current}, expected {head}"
        raise SchemaOutdated(f"the database schema {state}: run `campaigner db upgrade` first")
