"""Customers and orders read from the shop's own database, incrementally, on a timer."""

from campaigner.sources.sync import (
    KINDS,
    SourceRowError,
    SyncFailed,
    SyncReport,
    source_named,
    sync_source,
)

__all__ = ["KINDS", "SourceRowError", "SyncFailed", "SyncReport", "source_named", "sync_source"]
