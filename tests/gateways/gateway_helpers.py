"""Helpers the HTTP gateway tests share: outgoing batches and collected error texts."""

from collections.abc import Callable, Iterable, Sequence

import httpx
import pytest
import respx

from campaigner.gateways.base import Gateway, GatewayError, OutgoingMessage


def messages(n: int, text: str = "Hi") -> list[OutgoingMessage]:
    """`n` messages with ledger ids 1..n to Iranian mobile numbers."""
    return [OutgoingMessage(i + 1, f"+98912{i:07d}", text) for i in range(n)]


def gateway_errors(
    route: Callable[[], respx.Route],
    gateway: Gateway,
    outcomes: Iterable[httpx.Response | Exception],
    batch: Sequence[OutgoingMessage] | None = None,
) -> list[str]:
    """Send `batch` (one message by default) once per outcome (a reply or a transport
    failure), each of which must raise GatewayError; returns the str and repr of every error,
    to check secrets stay out."""
    texts: list[str] = []
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            route().mock(side_effect=outcome)
        else:
            route().mock(return_value=outcome)
        with pytest.raises(GatewayError) as error:
            gateway.send(batch or messages(1))
        texts += [str(error.value), repr(error.value)]
    return texts
