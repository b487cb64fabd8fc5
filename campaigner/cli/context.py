"""What every command may need, created on first use: settings, engine, sessions.

Loading the settings registers their secrets, so that whatever a command prints or logs
afterwards is masked.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import click
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from campaigner.config import Settings, load_settings
from campaigner.db import create_engine_for, ensure_current, read_only_session, session_factory
from campaigner.db.snapshot import read_only_pair
from campaigner.gateways.registry import check_gateways
from campaigner.project import find_config
from campaigner.settings_secrets import register_settings_secrets


@dataclass
class AppContext:
    config_path: str | None = None
    verbose: bool = False
    database_unusable: bool = False  # a command found it unreachable or outdated once
    _settings: Settings | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        """The project's settings, checked whole at start-up (the gateways named exist)."""
        if self._settings is None:
            settings = load_settings(find_config(self.config_path))
            register_settings_secrets(settings)
            check_gateways(settings)
            self._settings = settings
        return self._settings

    @property
    def database_url(self) -> str | None:
        """The database a failing command was using, to name it in the error."""
        return self._settings.database.url if self._settings is not None else None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            database = self.settings.database
            self._engine = create_engine_for(
                database.url, echo=database.echo, lock_timeout=database.lock_timeout
            )
        return self._engine

    def sessions(self, *, check_schema: bool = True) -> sessionmaker[Session]:
        """A session factory; refuses to hand one out on an outdated schema."""
        if check_schema:
            ensure_current(self.engine)
        return session_factory(self.engine)

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only session (`db.read_only_session`), on a current schema."""
        ensure_current(self.engine)
        with read_only_session(self.engine) as session:
            yield session

    @contextmanager
    def reading_pair(self) -> Iterator[tuple[Session, Session | None]]:
        """Read-only sessions at one snapshot (`db.snapshot.read_only_pair`), for a report."""
        ensure_current(self.engine)
        with read_only_pair(self.engine) as pair:
            yield pair

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


pass_app = click.make_pass_decorator(AppContext)
