"""Appends one JSON object per message to a file (gateway.path): for tests and dry runs."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from campaigner.config import GatewaySettings
from campaigner.errors import ConfigError
from campaigner.gateways.base import Gateway, OutgoingMessage, SendResult


class FileGateway(Gateway):
    name: ClassVar[str] = "file"
    max_batch: ClassVar[int] = 500

    def __init__(
        self, settings: GatewaySettings, *, webhook_url: str = "", webhook_token: str = ""
    ) -> None:
        super().__init__(settings, webhook_url=webhook_url, webhook_token=webhook_token)
        if settings.path is None:
            raise ConfigError("gateway.path: the file gateway needs a path to write to")
        self.path = Path(settings.path)

    def send(self, batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        lines = "".join(
            json.dumps(
                {
                    "id": m.id,
                    "phone": m.phone,
                    "text": m.text,
                    "encoding": m.encoding,
                    "sender": m.sender,
                },
                ensure_ascii=False,
            )
            + "\n"
            for m in batch
        )
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())
        return [SendResult.accepted(m.id, f"file-{m.id}") for m in batch]
