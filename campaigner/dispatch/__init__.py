"""Sending: claim due ledger rows, apply the sending policy, hand them to a gateway, record."""

from campaigner.dispatch.breaker import CircuitBreaker, CircuitState
from campaigner.dispatch.dispatcher import Dispatcher
from campaigner.dispatch.ratelimit import TokenBucket
from campaigner.dispatch.rendering import Rendered, Renderer, RenderError
from campaigner.dispatch.report import DispatchReport, ReconcileReport

__all__ = [
    "CircuitBreaker",
    "CircuitState",
    "DispatchReport",
    "Dispatcher",
    "ReconcileReport",
    "RenderError",
    "Rendered",
    "Renderer",
    "TokenBucket",
]
