"""What every command may need, created on first use: settings, engine, sessions.

Loading the settings registers their secrets, so that whatever a command prints or logs
afterwards is masked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import click
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from campaigner.config import Settings, load_settings
from campaigner.db import create_engine_for, ensure_current, session_factory
from campaigner.logs import register_settings_secrets


@dataclass
class AppContext:
    config_path: str | None = None
    verbose: bool = False
    _settings: Settings | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
            register_settings_secrets(self._settings)
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine_for(
                self.settings.database.url, echo=self.settings.database.echo
            )
        return self._engine

    def sessions(self, *, check_schema: bool = True) -> sessionmaker[Session]:
        """A session factory; refuses to hand one out on an outdated schema."""
        if check_schema:
            ensure_current(self.engine)
        return session_factory(self.engine)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


pass_app = click.make_pass_decorator(AppContext)
