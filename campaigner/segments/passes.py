"""A segmenting pass: the inputs of the customers touched, then the shop-wide ranking.

Kept apart from `scoring` (the usual pass) and `fill` (a shop's first pass), which it
chooses between, so that neither of them has to import the other's caller.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from campaigner.db.roomy import roomy
from campaigner.segments.fill import fill, wanted
from campaigner.segments.rfm_map import SegmentMap
from campaigner.segments.scoring import (
    RESCORE_CACHE_KIB,
    RESCORE_WORK_MEM_MB,
    RescoreResult,
    lock,
    refresh_inputs,
    rescore,
)


def recompute(
    session: Session,
    segment_map: SegmentMap,
    now: datetime,
    main_currency: str,
    customer_ids: list[int] | None = None,
    afresh: bool | None = None,
) -> RescoreResult:
    """Inputs of the customers touched (None: everybody), then the shop-wide ranking, with
    room to sort and group a million customers (at 1M, 33 s of CPU on SQLite instead of 52).

    A pass over everybody on a table that is (nearly) empty fills it afresh instead
    (campaigner/segments/fill.py); `afresh` forces either way, for tests and benchmarks.

    A pass over everybody (the daemon's first, or after a change of main currency) places
    the customers who had no scores without a history row: it cannot tell when they arrived
    (a shop's orders from before it had segments, or orders written behind the loaders'
    back), and rows saying they all left "none" today would make a `segment_change` rule
    message every customer of its `to` segments on the day of an upgrade. Moves of customers
    who had scores are recorded as always, and so is a first placement by a loader or by the
    daily pass's refresh of the orders changed since the last one."""
    with roomy(session, sqlite_cache_kib=RESCORE_CACHE_KIB, work_mem_mb=RESCORE_WORK_MEM_MB):
        everybody = customer_ids is None
        if everybody:
            lock(session)  # before deciding: a pass that ran meanwhile has filled the table
            if wanted(session) if afresh is None else afresh:
                return fill(session, segment_map, now, main_currency)
        refresh_inputs(session, customer_ids, main_currency)
        return rescore(session, segment_map, now, record_arrivals=not everybody)
