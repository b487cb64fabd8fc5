"""Prints each message: the demo's gateway, and a safe default that sends nothing real."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from itertools import count
from typing import ClassVar, TextIO

from campaigner.config import GatewaySettings
from campaigner.display import shown
from campaigner.gateways.base import Gateway, OutgoingMessage, SendResult


class ConsoleGateway(Gateway):
    name: ClassVar[str] = "console"
    max_batch: ClassVar[int] = 100

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        webhook_url: str = "",
        webhook_token: str = "",
        stream: TextIO | None = None,
    ) -> None:
        super().__init__(settings, webhook_url=webhook_url, webhook_token=webhook_token)
        self.stream = stream
        self._ids = count(1)

    def send(self, batch: Sequence[OutgoingMessage]) -> list[SendResult]:
        out = self.stream or sys.stdout
        for message in batch:
            line = f"SMS #{message.id} to {message.phone} [{message.encoding}]: {message.text}"
            out.write(shown(line) + "\n")  # the text holds customer data: drawn, not obeyed
        out.flush()
        return [SendResult.accepted(m.id, f"console-{m.id}") for m in batch]
