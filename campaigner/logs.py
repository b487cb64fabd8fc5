"""Logging for humans (text) or machines (JSON lines), with every known secret masked.

The mask sits in the formatters, after the message, the traceback and the stack are put
together, so it covers every logger (ours, httpx's, uvicorn's) and every part of a record.
Filters on the chattiest loggers also rewrite records at their source, for handlers that
are not ours (pytest's caplog, an operator's own logging set-up).
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from campaigner.display import json_text, shown
from campaigner.masking import mask

NOISY_LOGGERS = (
    "alembic",
    "httpx",
    "httpcore",
    "uvicorn.access",
    "uvicorn.error",
    "apscheduler",
)
# Filters on a logger only see records created on that logger, so each one is listed.
MASKED_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.http11",
    "httpcore.connection",
    "uvicorn.error",
    "uvicorn.access",
    "campaigner",
)


class MaskSecrets(logging.Filter):
    """Rewrites a record's message with every registered secret masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = mask(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_FILTER = MaskSecrets()


def install_masking(*logger_names: str) -> None:
    for name in (*MASKED_LOGGERS, *logger_names):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


class TextFormatter(logging.Formatter):
    """One line per record, then its traceback if any. The line is drawn (`shown`): a log
    message may quote a file name, a gateway's answer or a customer's data, whose escape
    sequences would drive the operator's terminal and whose line breaks would forge log
    lines."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        return shown(mask(super().formatMessage(record)))

    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line; fields are masked before encoding, whose escapes
    (a quote, a backslash) would otherwise change how a secret looks."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": mask(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = mask(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = mask(self.formatStack(record.stack_info))
        return json_text(entry)


def log_handler(log_format: str = "text", stream: TextIO | None = None) -> logging.Handler:
    """Campaigner's handler: masked text or JSON lines on `stream` (stderr by default)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    return handler


def configure_logging(*, verbose: bool = False, log_format: str = "text") -> None:
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(log_handler(log_format))
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in NOISY_LOGGERS:
        # APScheduler warns whenever a wake-up finds the task already running: expected here.
        quiet = logging.ERROR if noisy == "apscheduler" else logging.WARNING
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else quiet)
    install_masking()
