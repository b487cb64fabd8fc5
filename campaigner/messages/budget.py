"""A render budget: how long one message's template may run, and how much it may build.

An honest SMS template renders in well under a millisecond and builds a few hundred
characters. A careless or hostile one (nested loops, `'a' * 10**10`, a template that
includes itself) must fail its own message instead of hanging the daemon, holding the
database's write lock or exhausting memory. The sandbox (`campaigner.messages.sandbox`)
reports everything a template does to the budget of the render in progress; the budget
raises `TemplateLimit` as soon as any limit is passed.

Time is the rendering thread's CPU time: the limit is there to stop a template that computes
too much, and on a loaded machine an honest render can wait for a core (or the GIL) longer
than its whole budget. Waiting is bounded too, by a wall-clock backstop many times longer.

Sizes count characters for text and, for lists and dicts, items plus the sizes of what they
hold (a list of a thousand references to one long text is as big as the text it would
become).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

# Limits that are not worth a setting: far beyond any honest template, small enough to keep
# a runaway one cheap.
MAX_ITERATIONS = 100_000  # loop iterations per message (Jinja's own cap for one range())
WORK_FACTOR = 100  # all values built together may be this many times render_max_chars
MAX_INT_BITS = 4096  # integers of about 1,200 digits
MAX_NESTING = 50
WALL_BACKSTOP = 10  # a render may take this many times its CPU budget in wall-clock time


class TemplateLimit(Exception):
    """The template went over its render budget. The message fails with `template_limit`."""


@dataclass(frozen=True)
class RenderLimits:
    seconds: float = 1.0
    max_chars: int = 10_000


class RenderBudget:
    """What one render may still spend; not shared between threads."""

    def __init__(
        self,
        limits: RenderLimits,
        *,
        cpu: Callable[[], float] = time.thread_time,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self.cpu, self.wall = cpu, wall
        started = wall()
        # CPU time never runs ahead of wall time: until `deadline` the (dearer) CPU clock
        # need not be read, so an honest render costs what it did with a wall-clock limit.
        self.deadline = started + limits.seconds
        self.backstop = started + limits.seconds * WALL_BACKSTOP
        self.cpu_deadline = cpu() + limits.seconds
        self.built = 0
        self.iterations = 0

    def tick(self) -> None:
        now = self.wall()
        if now <= self.deadline:
            return
        if self.cpu() > self.cpu_deadline:
            raise TemplateLimit(f"took longer than {self.limits.seconds:g}s (CPU time) to render")
        if now > self.backstop:
            raise TemplateLimit(
                f"took longer than {self.limits.seconds * WALL_BACKSTOP:g}s to render"
                " (waiting included)"
            )

    def allow(self, size: int, what: str) -> None:
        """Before building something of `size`: refuse it if it is over the limit."""
        if size > self.limits.max_chars:
            raise TemplateLimit(
                f"{what} of {size:,} characters or items; the limit is "
                f"{self.limits.max_chars:,} (messages.render_max_chars)"
            )

    def built_value(self, value: Any, what: str = "a value") -> Any:
        """After building `value`: count it, and stop if it or the total is over the limit."""
        self.tick()
        if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            raise TemplateLimit(f"{what}: a number of more than {MAX_INT_BITS} bits")
        size = size_of(value)
        if size:
            self.allow(size, what)
            self.built += size
            total = self.limits.max_chars * WORK_FACTOR
            if self.built > total:
                raise TemplateLimit(f"built more than {total:,} characters in all")
        return value

    def iteration(self) -> None:
        self.iterations += 1
        if self.iterations > MAX_ITERATIONS:
            raise TemplateLimit(f"more than {MAX_ITERATIONS:,} loop iterations")
        if self.iterations % 64 == 0:
            self.tick()


_CURRENT: ContextVar[RenderBudget | None] = ContextVar("campaigner_render_budget", default=None)


@contextmanager
def render_budget(limits: RenderLimits) -> Iterator[RenderBudget]:
    """The budget of the render in this block (also while Jinja compiles: it folds
    constant expressions then)."""
    budget = RenderBudget(limits)
    token = _CURRENT.set(budget)
    try:
        yield budget
    finally:
        _CURRENT.reset(token)


def current(limits: RenderLimits) -> RenderBudget:
    """The budget of the render in progress; outside one, a fresh budget with `limits`, so
    that nothing a template does is ever unbounded."""
    return _CURRENT.get() or RenderBudget(limits)


def size_of(value: Any) -> int:
    """Characters of a text; items of a collection plus the sizes of what it holds."""
    if isinstance(value, str):  # nearly every value a template builds
        return len(value)
    return _size(value, {}, 0)


def _size(value: Any, seen: dict[int, int], depth: int) -> int:
    if isinstance(value, str | bytes | bytearray):
        return len(value)
    if not isinstance(value, list | tuple | dict | set | frozenset):
        return 0
    known = seen.get(id(value))
    if known is not None:
        return known
    if depth > MAX_NESTING:
        raise TemplateLimit(f"values nested more than {MAX_NESTING} deep")
    seen[id(value)] = 0  # a list that contains itself counts once
    items = value.values() if isinstance(value, dict) else value
    total = len(value) + sum(_size(item, seen, depth + 1) for item in items)
    seen[id(value)] = total
    return total
