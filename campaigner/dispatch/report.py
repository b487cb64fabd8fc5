"""What a dispatch pass and a reconciliation pass did, for logs, metrics and `run --once`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class DispatchReport:
    """What one dispatch pass did; `requeued` rows went back untouched (circuit open)."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    expired: int = 0
    retried: int = 0
    requeued: int = 0
    unknown: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    paused: bool = False
    gateway: str | None = None

    def add(self, other: DispatchReport) -> None:
        counts = ("claimed", "sent", "failed", "deferred", "expired", "retried", "requeued")
        for name in (*counts, "unknown"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.skipped.update(other.skipped)
        self.paused = other.paused
        self.gateway = other.gateway or self.gateway


@dataclass
class ReconcileReport:
    checked: int = 0
    updated: Counter[str] = field(default_factory=Counter)
    still_unknown: int = 0
