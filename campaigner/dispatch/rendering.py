"""What the dispatcher needs from the message renderer, and nothing more.

The renderer (templates, encodings, segment counts) lives in `campaigner.messages`; the
dispatcher only needs the final text, so it depends on this small protocol and the
integrator plugs the real renderer in.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session

from campaigner.db.models import Message
from campaigner.messages.render import Rendered, RenderError

__all__ = ["RenderError", "Rendered", "Renderer"]


class Renderer(Protocol):
    def render(self, session: Session, message: Message) -> Rendered:
        """The SMS text for one ledger row; raises RenderError when it cannot be sent."""
        ...
