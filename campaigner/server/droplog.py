"""The log lines about connections and requests the server drops, few even under a flood.

Each connection closed for slowness or evicted (head or body not in time, answers not taken,
the longest waiting past the cap, a slot given to a newer request) was one INFO line: a
client opening thousands of connections a second wrote thousands of lines a second, and
the log drowned (disk, journald's rate limit dropping the daemon's other lines with them).
So in each interval of `interval` seconds, opened by the first drop after a quiet one, the
first `first` drops of each reason are logged in full (who and why, as before) and the rest
are only counted; when the interval ends one line gives those counts per reason. No drop
goes unmentioned, and a flood costs a few lines per interval, not one per connection.

The counts are said when the interval ends, by a timer on the event loop that noted the
first drop counted (the server's): a flood that stops is still summed up. Without a running
loop there is no timer, and the next drop after the interval says them. A server that stops
says them then (`stop`), however much of the interval is left: neither its loop's timer nor
a later drop would.

A count alone would not say who: a flood would hide behind its first few lines, or behind
a few drops of the same reason made first to use them up. So a drop names its client
(`who`: the address as the per-client limits count it), and the counts name the clients
with the most drops of each reason. They are counted for the first `NAMED` clients of a
reason in an interval and the rest only summed up, so a flood from many addresses costs a
bounded memory and line.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import Callable
from time import monotonic

INTERVAL_SECONDS = 10.0
FIRST_IN_FULL = 5  # per reason and interval
NAMED = 100  # clients counted by name, per reason and interval
WHO_CHARS = 64  # of a client's name, kept printable: a forwarded address is anyone's words
SHOWN = 3  # clients named in the line of counts, per reason, the most drops first

Later = Callable[[float, Callable[[], None]], object]
"""Call the function after so many seconds: the event loop's `call_later`."""


def _on_running_loop(delay: float, callback: Callable[[], None]) -> object:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return loop.call_later(delay, callback)


class DropLog:
    """The drops of one server, logged to `logger` at INFO. Safe from any thread: the
    server's loop notes them, a test may say the counts."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval: float = INTERVAL_SECONDS,
        first: int = FIRST_IN_FULL,
        clock: Callable[[], float] = monotonic,
        later: Later = _on_running_loop,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self.first = first
        self.clock = clock
        self.later = later
        self._lock = threading.Lock()
        self._since: float | None = None
        self._seen: Counter[str] = Counter()
        self._held: Counter[str] = Counter()
        self._who: dict[str, Counter[str]] = {}
        self._level: dict[str, int] = {}
        self._timer: object = None

    def info(self, reason: str, message: str, *args: object, who: str = "") -> None:
        """One drop, for `reason` (a few words, the same for every drop of its kind, never
        the client's words) of client `who`: `message % args` logged in full, or counted
        once `first` of its reason have been logged in this interval."""
        self._note(logging.INFO, reason, message, args, who)

    def warning(self, reason: str, message: str, *args: object, who: str = "") -> None:
        """As `info`, logged at WARNING, and so is a line of counts that counts it."""
        self._note(logging.WARNING, reason, message, args, who)

    def _note(
        self, level: int, reason: str, message: str, args: tuple[object, ...], who: str
    ) -> None:
        with self._lock:
            now = self.clock()
            if self._since is not None and now - self._since >= self.interval:
                self._say(self._end_interval())
            if self._since is None:
                self._since = now
            self._seen[reason] += 1
            if self._seen[reason] > self.first:
                self._held[reason] += 1
                self._level[reason] = level
                clients = self._who.setdefault(reason, Counter())
                who = _printable(who[:WHO_CHARS])
                if who and (who in clients or len(clients) < NAMED):
                    clients[who] += 1
                if self._timer is None:
                    self._timer = self.later(self._since + self.interval - now, self.flush)
                return
        # The path and client are the client's words: a newline there would forge a line.
        self.logger.log(level, "%s", _printable(message % args if args else message))

    def flush(self) -> None:
        """Say the counts of the interval once it is over (called early, wait for its end
        again: a loop's timer may fire a hair early)."""
        with self._lock:
            self._timer = None
            if self._since is None:
                return
            left = self._since + self.interval - self.clock()
            if left > 0:
                if self._held:
                    self._timer = self.later(left, self.flush)
                return
            self._say(self._end_interval())

    def stop(self) -> None:
        """Say the counts held now: the server stops, so its loop's timer will never fire
        and no later drop will come. Before the interval's end, the line says how long they
        were counted."""
        with self._lock:
            self._timer = None
            if self._since is None:
                return
            counted = self.clock() - self._since
            self._say(
                self._end_interval(stopped_after=counted if counted < self.interval else None)
            )

    def _end_interval(self, stopped_after: float | None = None) -> tuple[int, str] | None:
        """The interval's line of counts, if any were held, and a new interval. `stopped_after`:
        the server stopped that many seconds into it."""
        held, who, levels = self._held, self._who, self._level
        self._since, self._seen, self._held, self._who, self._level = (
            None,
            Counter(),
            Counter(),
            {},
            {},
        )
        if not held:
            return None
        counts = "; ".join(
            f"{count:,} {reason}{_named(who.get(reason, Counter()), count)}"
            for reason, count in held.most_common()
        )
        span = (
            f"in {self.interval:g}s"
            if stopped_after is None
            else f"in the {stopped_after:.1f}s before the server stopped"
        )
        return max(levels.values()), (
            f"{sum(held.values()):,} more dropped {span}, not logged one by one (the first "
            f"{self.first} of each reason were): {counts}"
        )

    def _say(self, summary: tuple[int, str] | None) -> None:
        if summary:
            self.logger.log(summary[0], "%s", summary[1])


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)


def _named(clients: Counter[str], count: int) -> str:
    """Who made `count` drops: the clients with the most, and how many drops the others
    made (clients past NAMED, or none named)."""
    if not clients:
        return ""
    shown = clients.most_common(SHOWN)
    rest = count - sum(n for _, n in shown)
    names = ", ".join(f"{client} {n:,}" for client, n in shown)
    return f" (from {names}" + (f", others {rest:,})" if rest else ")")
