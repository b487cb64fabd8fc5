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

    A customer placed for the first time is recorded as moving from "none" only when their
    first paid order is recent (scoring.ARRIVAL_WINDOW), and one back from "none" as moving
    from the segment they left (scoring.left_for_none), whichever pass places them."""
    with roomy(session, sqlite_cache_kib=RESCORE_CACHE_KIB, work_mem_mb=RESCORE_WORK_MEM_MB):
        if customer_ids is None:
            lock(session)  # before deciding: a pass that ran meanwhile has filled the table
            if wanted(session) if afresh is None else afresh:
                return fill(session, segment_map, now, main_currency)
        refresh_inputs(session, customer_ids, main_currency)
        return rescore(session, segment_map, now)
