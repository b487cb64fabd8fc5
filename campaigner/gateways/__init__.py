"""SMS gateways: one small base class, built-ins and plug-ins registered by entry point."""

from campaigner.gateways.base import (
    DeliveryReport,
    Gateway,
    GatewayError,
    InboundSms,
    Outcome,
    OutgoingMessage,
    SendResult,
    WebhookRequest,
)
from campaigner.gateways.registry import available_gateways, create_gateway

__all__ = [
    "DeliveryReport",
    "Gateway",
    "GatewayError",
    "InboundSms",
    "Outcome",
    "OutgoingMessage",
    "SendResult",
    "WebhookRequest",
    "available_gateways",
    "create_gateway",
]
