"""The server's log of dropped connections: the first few in full, then counts."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from campaigner.server import droplog
from campaigner.server.droplog import DropLog

log = logging.getLogger("campaigner.server.test_droplog")


class Timers:
    """An injected clock and the timers set on it, run by `advance`."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pending: list[tuple[float, Callable[[], None]]] = []

    def later(self, delay: float, callback: Callable[[], None]) -> object:
        self.pending.append((self.now + delay, callback))
        return callback

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [entry for entry in self.pending if entry[0] <= self.now]
        self.pending = [entry for entry in self.pending if entry[0] > self.now]
        for _, callback in sorted(due, key=lambda entry: entry[0]):
            callback()


@pytest.fixture
def timers() -> Timers:
    return Timers()


@pytest.fixture
def drops(timers: Timers) -> DropLog:
    return DropLog(log, interval=10, first=3, clock=lambda: timers.now, later=timers.later)


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    lines = [record.getMessage() for record in caplog.records if record.name == log.name]
    caplog.clear()
    return lines


def test_a_flood_is_a_few_lines_in_full_and_one_line_of_counts_when_the_interval_ends(
    drops: DropLog, timers: Timers, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: each dropped connection was its own INFO line, thousands a second in a
    flood. 1,000 head timeouts and 2 send timeouts in a second: the first 3 of each reason
    in full, then nothing until the interval ends, then the counts of the rest."""
    caplog.set_level(logging.INFO, logger=log.name)
    for n in range(1000):
        drops.info("request heads not received in time", "head %d not received", n)
    drops.info("answers not taken in time", "answer 1 not taken")
    drops.info("answers not taken in time", "answer 2 not taken")
    timers.advance(1)
    assert _lines(caplog) == [
        "head 0 not received",
        "head 1 not received",
        "head 2 not received",
        "answer 1 not taken",
        "answer 2 not taken",
    ]
    timers.advance(8.9)
    assert _lines(caplog) == []  # 9.9 s into the interval
    timers.advance(0.1)
    assert _lines(caplog) == [
        "997 more dropped in 10s, not logged one by one (the first 3 of each reason were): "
        "997 request heads not received in time"
    ]
    drops.info("request heads not received in time", "head %d not received", 1000)
    assert _lines(caplog) == ["head 1000 not received"]  # a new interval: in full again


def test_no_line_of_counts_when_every_drop_was_logged_in_full(
    drops: DropLog, timers: Timers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=log.name)
    for n in range(3):
        drops.info("slots given to a newer request", "slot %d", n)
    timers.advance(60)
    assert _lines(caplog) == ["slot 0", "slot 1", "slot 2"]
    assert timers.pending == []


def test_without_a_timer_the_next_drop_after_the_interval_says_the_counts(
    timers: Timers, caplog: pytest.LogCaptureFixture
) -> None:
    """Outside an event loop no timer is set: the counts are not lost, the next drop says
    them before its own line."""
    caplog.set_level(logging.INFO, logger=log.name)
    drops = DropLog(log, interval=10, first=1, clock=lambda: timers.now, later=lambda *_: None)
    for n in range(5):
        drops.info("bodies not received in time", "body %d", n)
    timers.advance(12)
    drops.info("bodies not received in time", "body %d", 5)
    assert _lines(caplog) == [
        "body 0",
        "4 more dropped in 10s, not logged one by one (the first 1 of each reason were): "
        "4 bodies not received in time",
        "body 5",
    ]


def test_a_timer_that_fires_early_waits_for_the_end_of_the_interval(
    drops: DropLog, timers: Timers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=log.name)
    for n in range(5):
        drops.info("clients gone mid-body", "gone %d", n)
    timers.advance(5)
    drops.flush()  # as if the loop's timer fired 5 s early
    assert _lines(caplog) == ["gone 0", "gone 1", "gone 2"]
    timers.advance(5)
    assert _lines(caplog) == [
        "2 more dropped in 10s, not logged one by one (the first 3 of each reason were): "
        "2 clients gone mid-body"
    ]


def test_the_counts_name_the_clients_with_the_most_drops_in_bounded_memory(
    drops: DropLog,
    timers: Timers,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Regression: past the first lines in full a flood was a count alone, so who made it
    was lost, and a client could use up the lines in full with a few drops of its own before
    the ones that mattered. The clients with the most drops are named, for the first NAMED
    clients of a reason (memory bounded however many addresses flood), the rest summed up;
    a name is cut short and printable (a forwarded address is anyone's words)."""
    monkeypatch.setattr(droplog, "NAMED", 3)
    caplog.set_level(logging.INFO, logger=log.name)
    for n in range(3):
        drops.info("slots given to a newer request", "slot %d", n, who="198.51.100.1")
    for _ in range(5):
        drops.info("slots given to a newer request", "slot", who="203.0.113.9")
    drops.info("slots given to a newer request", "slot", who="2001:db8:1:2::/64")
    for n in range(100):
        drops.info("slots given to a newer request", "slot", who=f"192.0.2.{n}")
    drops.info("bodies not received in time", "body", who="\x1b[2J" + "x" * 100 + "\nforged")
    timers.advance(10)
    assert _lines(caplog) == [
        "slot 0",
        "slot 1",
        "slot 2",
        "body",
        "106 more dropped in 10s, not logged one by one (the first 3 of each reason were): "
        "106 slots given to a newer request (from 203.0.113.9 5, 2001:db8:1:2::/64 1, "
        "192.0.2.0 1, others 99)",
    ]
    assert all(len(clients) <= 3 for clients in drops._who.values())
    for _ in range(4):
        drops.info("bodies not received in time", "body", who="\x1b[2J" + "x" * 100 + "\nforged")
    timers.advance(10)
    assert _lines(caplog)[-1].endswith(
        "1 bodies not received in time (from ?[2J" + "x" * 60 + " 1)"
    )


def test_a_warning_is_counted_at_warning(
    drops: DropLog, timers: Timers, caplog: pytest.LogCaptureFixture
) -> None:
    """A head too long was a WARNING line per request; counted past the first, its line of
    counts is a WARNING too, so a filter on warnings still sees the flood."""
    caplog.set_level(logging.INFO, logger=log.name)
    for _ in range(4):
        drops.warning("request heads too long", "head too long", who="203.0.113.9")
    drops.info("answers not taken in time", "answer", who="203.0.113.9")
    timers.advance(10)
    records = [(r.levelno, r.getMessage()[:12]) for r in caplog.records if r.name == log.name]
    assert records == [
        (logging.WARNING, "head too long"[:12]),
        (logging.WARNING, "head too long"[:12]),
        (logging.WARNING, "head too long"[:12]),
        (logging.INFO, "answer"),
        (logging.WARNING, "1 more dropp"),
    ]


def test_a_stop_says_the_counts_held_and_how_long_they_were_counted(
    drops: DropLog, timers: Timers, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: the counts of an interval were said when it ended, by a timer on the
    server's loop; a daemon that stopped before then never said them. The server's stop
    says them, 3 s into the interval; its timer, were it to fire after all, says nothing."""
    caplog.set_level(logging.INFO, logger=log.name)
    for n in range(5):
        drops.info("answers not taken in time", "answer %d", n, who="203.0.113.9")
    timers.advance(3)
    drops.stop()
    assert _lines(caplog) == [
        "answer 0",
        "answer 1",
        "answer 2",
        "2 more dropped in the 3.0s before the server stopped, not logged one by one (the "
        "first 3 of each reason were): 2 answers not taken in time (from 203.0.113.9 2)",
    ]
    timers.advance(10)
    drops.stop()  # a second stop, and a stop without counts, say nothing
    assert _lines(caplog) == []


def test_a_stop_after_the_interval_says_its_counts_as_the_interval_s(
    timers: Timers, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a loop's timer the interval may be over when the server stops: its line is
    the interval's, as the next drop would have said it."""
    caplog.set_level(logging.INFO, logger=log.name)
    drops = DropLog(log, interval=10, first=1, clock=lambda: timers.now, later=lambda *_: None)
    for n in range(3):
        drops.info("bodies not received in time", "body %d", n)
    timers.advance(12)
    drops.stop()
    assert _lines(caplog) == [
        "body 0",
        "2 more dropped in 10s, not logged one by one (the first 1 of each reason were): "
        "2 bodies not received in time",
    ]


def test_a_line_in_full_keeps_the_client_s_words_on_one_printable_line(
    drops: DropLog, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: a line logged in full carried the request's path (percent-decoded, so
    "%0A" is a newline) and the client as forwarded, as they came: a client could end the
    line and forge one after it, or send terminal escapes to whoever reads the log."""
    caplog.set_level(logging.INFO, logger=log.name)
    path = "/console/rules/a\n2026-11-30 23:00:00 INFO campaigner: admin signed in"
    drops.info("bodies not received in time", "POST %s: from %s", path, "203.0.113.9\x1b[2J")
    assert _lines(caplog) == [
        "POST /console/rules/a?2026-11-30 23:00:00 INFO campaigner: admin signed in: "
        "from 203.0.113.9?[2J"
    ]
