"""The RFM map: which named segment each (recency score, frequency score) cell belongs to.

The default is the R×F grid most public RFM analyses use (the `seg_map` of the FLO/Miuul
CRM-analytics case study, copied in many notebooks on GitHub: `[1-2][1-2]` hibernating,
`[1-2][3-4]` at risk, `[1-2]5` can't lose, `3[1-2]` about to sleep, `33` need attention,
`[3-4][4-5]` loyal, `41` promising, `51` new, `[4-5][2-3]` potential loyalists, `5[4-5]`
champions), with "lost" (the eleventh segment of Putler's RFM list: lowest recency and
frequency) carved out of hibernating as the single cell R1 F1. A grid gives every cell
exactly one segment, so no customer falls between two segments or none.

A shop replaces it whole with `[segments.map]` in config.toml: each segment a list of cell
patterns such as "5[4-5]" (recency digit, then frequency digit; a bracket is a range).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SEGMENTS = (
    "champions",
    "loyal",
    "potential_loyalist",
    "new",
    "promising",
    "needs_attention",
    "about_to_sleep",
    "at_risk",
    "cant_lose",
    "hibernating",
    "lost",
)
NO_SEGMENT = "none"
"""The segment of a customer without a paid order."""

DEFAULT_PATTERNS: dict[str, tuple[str, ...]] = {
    "champions": ("5[4-5]",),
    "loyal": ("[3-4][4-5]",),
    "potential_loyalist": ("[4-5][2-3]",),
    "new": ("51",),
    "promising": ("41",),
    "needs_attention": ("33",),
    "about_to_sleep": ("3[1-2]",),
    "at_risk": ("[1-2][3-4]",),
    "cant_lose": ("[1-2]5",),
    "hibernating": ("12", "2[1-2]"),
    "lost": ("11",),
}

_PART = r"([1-5]|\[[1-5]-[1-5]\])"
_PATTERN = re.compile(rf"^{_PART}{_PART}$")


class MapError(ValueError):
    """A `[segments.map]` that does not describe one segment for every cell."""


@dataclass(frozen=True)
class SegmentMap:
    """Each of the 25 cells `recency*10 + frequency` (11…55) with its segment."""

    cells: Mapping[int, str]

    def segment(self, recency: int, frequency: int) -> str:
        return self.cells[recency * 10 + frequency]

    def cells_of(self, segment: str) -> list[int]:
        return sorted(cell for cell, name in self.cells.items() if name == segment)

    @classmethod
    def standard(cls) -> SegmentMap:
        return cls.parse(DEFAULT_PATTERNS)

    @classmethod
    def parse(cls, patterns: Mapping[str, Sequence[str]]) -> SegmentMap:
        """The map from segment -> cell patterns; every cell must be named exactly once."""
        cells: dict[int, str] = {}
        for segment, given in patterns.items():
            if segment not in SEGMENTS:
                raise MapError(f"unknown segment {segment!r} (known: {', '.join(SEGMENTS)})")
            for pattern in given:
                for cell in _expand(segment, pattern):
                    if cell in cells:
                        raise MapError(
                            f"cell {cell} (R{cell // 10} F{cell % 10}) is in both "
                            f"{cells[cell]} and {segment}"
                        )
                    cells[cell] = segment
        missing = [r * 10 + f for r in range(1, 6) for f in range(1, 6) if r * 10 + f not in cells]
        if missing:
            raise MapError(
                f"cell(s) {', '.join(map(str, missing))} belong to no segment: the map must "
                "give each of the 25 recency/frequency cells (11 to 55) one segment"
            )
        return cls(cells)


def _expand(segment: str, pattern: str) -> list[int]:
    match = _PATTERN.match(pattern.strip())
    if not match:
        raise MapError(
            f"{segment}: {pattern!r} is no cell pattern; write recency then frequency, "
            'each a digit 1-5 or a range, e.g. "5[4-5]"'
        )
    recency, frequency = (_digits(part) for part in match.groups())
    return [r * 10 + f for r in recency for f in frequency]


def _digits(part: str) -> range:
    if part.startswith("["):
        low, high = int(part[1]), int(part[3])
        if low > high:
            raise MapError(f"range {part} runs backwards")
        return range(low, high + 1)
    return range(int(part), int(part) + 1)
