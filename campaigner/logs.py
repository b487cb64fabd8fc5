"""Logging for humans (text) or machines (JSON lines), with every known secret masked.

The mask sits on the handler, so it covers every logger, ours and the libraries'.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from pydantic import SecretStr
from sqlalchemy.engine import make_url

from campaigner.config import Settings
from campaigner.gateways.http import RedactSecrets, register_secret

NOISY_LOGGERS = ("alembic", "httpx", "httpcore", "uvicorn.access", "apscheduler")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(*, verbose: bool = False, log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in NOISY_LOGGERS:
        # APScheduler warns whenever a wake-up finds the task already running: expected here.
        quiet = logging.ERROR if noisy == "apscheduler" else logging.WARNING
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else quiet)


def register_settings_secrets(settings: Settings) -> None:
    """Every secret in the configuration, and the database password, is masked from now on."""

    def walk(value: object) -> None:
        if isinstance(value, SecretStr):
            register_secret(value.get_secret_value())
        elif hasattr(value, "model_fields"):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(settings)
    password = make_url(settings.database.url).password
    register_secret(str(password) if password else None)
    for source in settings.sources:
        source_password = make_url(source.url.get_secret_value()).password
        register_secret(str(source_password) if source_password else None)
