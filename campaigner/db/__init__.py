"""Database access: engine, sessions, schema and migrations."""

from campaigner.db.engine import create_engine_for, read_only_session, session_factory
from campaigner.db.schema import ensure_current, upgrade

__all__ = [
    "create_engine_for",
    "ensure_current",
    "read_only_session",
    "session_factory",
    "upgrade",
]
