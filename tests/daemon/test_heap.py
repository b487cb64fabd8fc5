from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from campaigner.daemon.heap import YOUNG_THRESHOLD, settle_after_start


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


class Node:
    def __init__(self) -> None:
        self.me = self


@pytest.mark.usefixtures("restored_collector")
def test_what_exists_at_start_leaves_the_collections_and_later_cycles_are_still_collected() -> None:
    kept = Node()  # made at start, still needed: frozen, never walked again
    settle_after_start()

    assert gc.get_freeze_count() > 10_000  # the interpreter's, pytest's and our own objects
    assert gc.isenabled() and gc.get_threshold()[0] == YOUNG_THRESHOLD
    assert not any(item is kept for item in gc.get_objects())  # out of every generation
    later = Node()
    gone = weakref.ref(later)
    del later
    gc.collect()
    assert gone() is None
