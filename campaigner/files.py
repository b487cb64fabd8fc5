"""Reading the files marketers write (rules, templates) without trusting what they are.

A FIFO would block the reader forever and `/dev/zero` never ends; a name checked before
opening can be swapped for one of them in between. So the file is opened without blocking
and checked on the open descriptor, and read up to a size limit.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_FILE_BYTES = 64 * 1024


class Unreadable(Exception):
    """Not something a rule or template file can be: a FIFO, a device, a huge file."""


def read_text_file(path: Path, what: str, max_bytes: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of a regular file of at most `max_bytes`; `what` names it in errors
    ("a rule", "a template")."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        raise Unreadable(f"not a regular file ({_kind(mode)}): {what} must be a plain file")
    with os.fdopen(descriptor, "rb") as file:
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        size = max(len(data), path.stat().st_size)
        raise Unreadable(f"too large ({size} bytes): {what} file is at most {max_bytes} bytes")
    return data.decode("utf-8")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"
