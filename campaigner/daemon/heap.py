"""Garbage collection for a long-running sender: what exists at start is never walked again.

CPython's cyclic collector walks every tracked object of a generation when it collects it.
After start the daemon holds some 170,000 objects that never become garbage (SQLAlchemy's
mappers and compiled statements, pydantic's models, Jinja's templates); one walk of them
every few thousand messages cost 40-120 us a message on the Kannel path, more than
rendering one (bench/kannel_cpu.py, docs/benchmarks.md). Freezing them after start takes
them out of every collection, and a higher first threshold lets a batch's short-lived
objects die before a collection instead of being promoted and walked again. The collector
stays on: cycles made later are still collected.
"""

from __future__ import annotations

import gc

# Net new container objects between collections of the youngest generation (CPython's
# default is 700): a batch of 500 messages makes a few tens of thousands, gone by its end.
YOUNG_THRESHOLD = 50_000


def settle_after_start() -> None:
    """Call once everything long-lived is built (settings, rules, engine, gateways)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
