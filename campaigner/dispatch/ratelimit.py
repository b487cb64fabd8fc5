"""A token bucket, so a gateway never sees more than `rate_per_second` messages a second."""

from __future__ import annotations

import threading
from collections.abc import Callable

from campaigner.clock import Clock


class TokenBucket:
    """Reservation-style bucket: a caller takes its tokens now and sleeps off any debt.

    Callers in several threads each wait their own turn without a busy loop. A rate of 0
    turns the limit off. Time comes from the injected clock and `sleep`, so tests can run
    it on a FixedClock whose `sleep` just advances the clock.
    """

    def __init__(
        self, rate: float, clock: Clock, sleep: Callable[[float], None], burst: float = 0
    ) -> None:
        self.rate = rate
        self.capacity = max(burst, rate, 1.0)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._stamp = clock.now()
        self._lock = threading.Lock()

    def acquire(self, count: int = 1) -> float:
        """Take `count` tokens, sleeping as long as needed; returns the seconds waited."""
        if self.rate <= 0:
            return 0.0
        with self._lock:
            now = self._clock.now()
            elapsed = (now - self._stamp).total_seconds()
            self._stamp = now
            self._tokens = min(self.capacity, self._tokens + elapsed * self.rate) - count
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait
