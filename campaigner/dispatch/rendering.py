"""What the dispatcher needs from the message renderer, and nothing more.

The renderer (templates, encodings, segment counts) lives elsewhere; the dispatcher only
needs the final text, so it depends on this small protocol and the integrator plugs the
real renderer in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from campaigner.db.models import Message


@dataclass(frozen=True)
class Rendered:
    text: str
    encoding: str  # "gsm7" or "ucs2"
    segments: int


class RenderError(Exception):
    """This message cannot be rendered (e.g. "too long"); the row fails with `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Renderer(Protocol):
    def render(self, session: Session, message: Message) -> Rendered:
        """The SMS text for one ledger row; raises RenderError when it cannot be sent."""
        ...
