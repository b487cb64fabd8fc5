"""The console gateway prints each message on one line, its text drawn, never obeyed."""

from __future__ import annotations

import io

from campaigner.config import GatewaySettings
from campaigner.gateways.base import OutgoingMessage
from campaigner.gateways.console import ConsoleGateway


def test_a_message_is_one_inert_line() -> None:
    """Regression: `run --once` printed a message holding a customer's name `Ali<ESC>[31m`
    with the raw escape sequence, recolouring the operator's terminal."""
    out = io.StringIO()
    gateway = ConsoleGateway(GatewaySettings(), stream=out)
    text = "Hi Ali\x1b[31mred\nline two \u202eevil"
    [result] = gateway.send([OutgoingMessage(7, "+989121234567", text, "ucs2")])
    assert result.provider_id == "console-7"
    assert out.getvalue() == (
        "SMS #7 to +989121234567 [ucs2]: Hi Ali␛[31mred ⏎ line two \\u202eevil\n"
    )
