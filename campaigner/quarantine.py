"""Rules that fail at plan time: set aside for a while, reported, then tried again.

A rule whose planning query fails would fail the same way every minute, filling the log and
costing the database a query each time. Instead it waits: one minute after its first
failure, then twice as long after each further one, at most an hour. Editing the rule file
ends the wait at once (the rule is compared by value), and one good pass clears it.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from campaigner.rules.models import Rule

FIRST_WAIT = timedelta(minutes=1)
LONGEST_WAIT = timedelta(hours=1)


@dataclass(frozen=True)
class RuleFailure:
    """What /healthz and `campaigner status` show about a rule that does not plan."""

    rule: str
    error: str  # one line
    since: datetime  # the first failure in a row
    failures: int  # in a row
    retry_at: datetime  # skipped until then, or until its file changes

    def as_dict(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "since": self.since.isoformat(),
            "failures": self.failures,
            "retry_at": self.retry_at.isoformat(),
        }


class Quarantine:
    """Failing rules by name; shared by the planning tasks, which may run in parallel."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[str, tuple[RuleFailure, Rule]] = {}

    def holds(self, rule: Rule, now: datetime) -> RuleFailure | None:
        """The failure that keeps `rule` out of this pass, or None to plan it."""
        with self._lock:
            entry = self._failures.get(rule.name)
        if entry is None:
            return None
        failure, failed_version = entry
        if failed_version != rule or now >= failure.retry_at:
            return None
        return failure

    def failed(self, rule: Rule, error: str, now: datetime) -> RuleFailure:
        with self._lock:
            previous = self._failures.get(rule.name)
            count = previous[0].failures + 1 if previous else 1
            since = previous[0].since if previous else now
            wait = min(LONGEST_WAIT, FIRST_WAIT * 2 ** min(count - 1, 10))
            failure = RuleFailure(rule.name, error, since, count, now + wait)
            self._failures[rule.name] = (failure, rule)
        return failure

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name, None)

    def keep_only(self, names: Collection[str]) -> None:
        """Forget rules that are gone from the rulebook."""
        with self._lock:
            for name in set(self._failures) - set(names):
                del self._failures[name]

    def failures(self) -> dict[str, RuleFailure]:
        with self._lock:
            return {name: failure for name, (failure, _) in sorted(self._failures.items())}
