"""Log lines quote file names, gateways' answers and customers' data: one line each, drawn."""

from __future__ import annotations

import io
import json
import logging

from campaigner.logs import log_handler


def logged(log_format: str, message: str, *args: object, error: bool = False) -> str:
    stream = io.StringIO()
    logger = logging.getLogger(f"campaigner.test_logs.{log_format}")
    logger.propagate = False
    handler = log_handler(log_format, stream)
    logger.addHandler(handler)
    try:
        if error:
            try:
                raise ValueError("boom")
            except ValueError:
                logger.exception(message, *args)
        else:
            logger.warning(message, *args)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_a_text_line_cannot_drive_the_terminal_or_forge_a_line() -> None:
    """Regression: a rule file named `x<ESC>[31my.toml` put a raw escape sequence in the
    log, and a line break in a quoted value starts what reads as a log line of its own."""
    hostile = "rules/x\x1b[31my.toml\n2026-01-01 00:00:00,000 INFO campaigner: all good \u202eevil"
    out = logged("text", "rule problem: %s", hostile)
    [line] = out.splitlines()
    assert line.endswith(
        "WARNING campaigner.test_logs.text: rule problem: rules/x␛[31my.toml ⏎ "
        "2026-01-01 00:00:00,000 INFO campaigner: all good \\u202eevil"
    )


def test_a_traceback_keeps_its_lines() -> None:
    out = logged("text", "failed: %s", "a\nb", error=True)
    first, *rest = out.splitlines()
    assert first.endswith("failed: a ⏎ b")
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "ValueError: boom"


def test_a_json_line_escapes_every_control_and_bidi_character() -> None:
    out = logged("json", "answer: %s", "\x9b31m \u202eevil \x1b")
    [line] = out.splitlines()
    assert "\x9b" not in line and "\u202e" not in line and "\x1b" not in line
    assert json.loads(line)["message"] == "answer: \x9b31m \u202eevil \x1b"
