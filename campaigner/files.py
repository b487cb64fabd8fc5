"""Reading the files marketers write (rules, templates) without trusting what they are.

A FIFO would block the reader forever and `/dev/zero` never ends; a name checked before
opening can be swapped for one of them in between. So the file is opened without blocking
and checked on the open descriptor, and read up to a size limit. A byte order mark, which
Windows editors put before UTF-8 text, is dropped: it would otherwise reach a customer as an
invisible character that turns a whole SMS into UCS-2.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_FILE_BYTES = 64 * 1024


class Unreadable(Exception):
    """Not something a rule or template file can be: a FIFO, a device, a huge file."""


def read_text_file(
    path: Path, what: str, max_bytes: int = MAX_FILE_BYTES, *, inside: Path | None = None
) -> str:
    """The UTF-8 text of a regular file of at most `max_bytes`; `what` names it in errors
    ("a rule", "a template"). With `inside`, the file must really be in that folder: a
    symlink may point to a file next to it, not lead out of it (to /etc, to another
    project's secrets)."""
    if inside is not None:
        _check_inside(path, inside, what)
    descriptor = _open_regular(path, what)
    with os.fdopen(descriptor, "rb") as file:
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        size = max(len(data), path.stat().st_size)
        raise Unreadable(f"too large ({size} bytes): {what} file is at most {max_bytes} bytes")
    return data.decode("utf-8-sig")


def check_regular_file(path: Path, what: str) -> None:
    """Unreadable unless `path` is a regular file (not a FIFO, `/dev/zero`, a directory),
    found without waiting on it; for files read later by other means (a CSV import)."""
    os.close(_open_regular(path, what))


def _open_regular(path: Path, what: str) -> int:
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        raise Unreadable(f"not a regular file ({_kind(mode)}): {what} must be a plain file")
    return descriptor


def _check_inside(path: Path, folder: Path, what: str) -> None:
    # os.path.realpath, not Path.resolve: a symlink loop must fail at open (ELOOP, an
    # OSError the callers name), not raise RuntimeError here.
    target = Path(os.path.realpath(path))
    if not target.is_relative_to(os.path.realpath(folder)):
        raise Unreadable(
            f"a symlink leading outside {folder} (to {target}): {what} must be a file "
            "inside its folder"
        )


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"
