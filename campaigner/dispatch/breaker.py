"""A circuit breaker per gateway: stop hammering a gateway that is down or refuses us.

An authentication failure opens it at once; `threshold` consecutive temporary failures
open it too. After `cooldown` it lets one probe request through (half-open): success
closes it, failure opens it for another cool-down.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from enum import StrEnum

from campaigner.clock import Clock


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self, clock: Clock, *, threshold: int = 5, cooldown: timedelta = timedelta(seconds=60)
    ) -> None:
        self._clock = clock
        self.threshold = threshold
        self.cooldown = cooldown
        self.state = CircuitState.CLOSED
        self.failures = 0
        self.opened_at: datetime | None = None
        self.last_error = ""
        self._probing = False
        self._lock = threading.Lock()

    @property
    def retry_at(self) -> datetime | None:
        return None if self.opened_at is None else self.opened_at + self.cooldown

    def available(self) -> bool:
        """Whether a dispatch through this gateway may start (closed, or due for a probe)."""
        with self._lock:
            if self.state is CircuitState.OPEN:
                assert self.opened_at is not None
                return self._clock.now() >= self.opened_at + self.cooldown
            return not (self.state is CircuitState.HALF_OPEN and self._probing)

    def probing(self) -> bool:
        """True when the next request is a probe: send one request, not a full batch."""
        return self.state is not CircuitState.CLOSED

    def allow_request(self) -> bool:
        with self._lock:
            if self.state is CircuitState.CLOSED:
                return True
            if self.state is CircuitState.OPEN:
                assert self.opened_at is not None
                if self._clock.now() < self.opened_at + self.cooldown:
                    return False
                self.state = CircuitState.HALF_OPEN
            if self._probing:
                return False
            self._probing = True
            return True

    def success(self) -> None:
        with self._lock:
            self.state = CircuitState.CLOSED
            self.failures = 0
            self.opened_at = None
            self._probing = False

    def failure(self, error: str, *, auth: bool = False) -> bool:
        """Record a failed request; returns True when this failure opened the circuit."""
        with self._lock:
            self.failures += 1
            self.last_error = error
            was_open = self.state is CircuitState.OPEN
            if auth or self.state is CircuitState.HALF_OPEN or self.failures >= self.threshold:
                self.state = CircuitState.OPEN
                self.opened_at = self._clock.now()
                self._probing = False
                return not was_open
            return False
