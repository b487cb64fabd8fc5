"""Value segments: RFM scores per customer and the named segment they fall in."""

from campaigner.segments.passes import recompute
from campaigner.segments.rfm_map import NO_SEGMENT, SEGMENTS, MapError, SegmentMap
from campaigner.segments.scoring import RescoreResult, refresh_inputs, rescore

__all__ = [
    "NO_SEGMENT",
    "SEGMENTS",
    "MapError",
    "RescoreResult",
    "SegmentMap",
    "recompute",
    "refresh_inputs",
    "rescore",
]
