"""Gateways are found through the `campaigner.gateways` entry-point group, built-ins included."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

from campaigner.config import GatewaySettings
from campaigner.errors import ConfigError
from campaigner.gateways.base import Gateway

GROUP = "campaigner.gateways"


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available_gateways() -> dict[str, str]:
    """Installed gateway names and where each comes from (module:Class)."""
    return {name: ep.value for name, ep in sorted(_entry_points().items())}


def gateway_class(name: str) -> type[Gateway]:
    points = _entry_points()
    if name not in points:
        known = ", ".join(sorted(points)) or "none"
        raise ConfigError(f"gateway.name: unknown gateway {name!r} (installed: {known})")
    cls = points[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Gateway)):
        raise ConfigError(f"gateway {name!r} ({points[name].value}) is not a Gateway subclass")
    return cls


def create_gateway(
    settings: GatewaySettings, *, webhook_url: str = "", webhook_token: str = "", **extra: Any
) -> Gateway:
    """The gateway named by `settings.name`. `extra` reaches the constructor as keywords
    (e.g. `transport=` for HTTP gateways under test)."""
    cls = gateway_class(settings.name)
    return cls(settings, webhook_url=webhook_url, webhook_token=webhook_token, **extra)
