"""Gateways are found through the `campaigner.gateways` entry-point group, built-ins included."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

from campaigner.config import GatewaySettings, Settings, origin_of
from campaigner.errors import ConfigError
from campaigner.gateways.base import Gateway

GROUP = "campaigner.gateways"


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available_gateways() -> dict[str, str]:
    """Installed gateway names and where each comes from (module:Class)."""
    return {name: ep.value for name, ep in sorted(_entry_points().items())}


def _unknown(name: str, key: str, points: dict[str, EntryPoint]) -> str:
    known = ", ".join(sorted(points)) or "none"
    return f"{key}: unknown gateway {name!r} (installed: {known})"


def gateway_class(name: str) -> type[Gateway]:
    points = _entry_points()
    if name not in points:
        raise ConfigError(_unknown(name, "gateway.name", points))
    cls = points[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Gateway)):
        raise ConfigError(f"gateway {name!r} ({points[name].value}) is not a Gateway subclass")
    return cls


def declared_secret_options(name: str) -> frozenset[str]:
    """The options gateway `name` declares secret; none for a gateway not installed (the
    settings check names that problem)."""
    point = _entry_points().get(name)
    cls = point.load() if point is not None else None
    if isinstance(cls, type) and issubclass(cls, Gateway):
        return cls.secret_options
    return frozenset()


def check_gateways(settings: Settings) -> None:
    """Every gateway the settings name is installed, and the fallback table exists: checked
    when a command loads its settings, so a typo stops every command, not only `run`."""
    points = _entry_points()
    tables: dict[tuple[str, ...], GatewaySettings] = {("gateway",): settings.gateway}
    tables |= {("gateways", name): table for name, table in settings.gateways.items()}
    for loc, table in tables.items():
        if table.name not in points:
            key = ".".join((*loc, "name"))
            where = origin_of(settings, *loc, "name")
            raise ConfigError(f"{where}: {_unknown(table.name, key, points)}")
    fallback = settings.gateway.fallback
    if fallback and fallback not in settings.gateways:
        known = ", ".join(sorted(settings.gateways)) or "none"
        raise ConfigError(
            f"{origin_of(settings, 'gateway', 'fallback')}: gateway.fallback: no "
            f"[gateways.{fallback}] table (tables: {known})"
        )


def create_gateway(
    settings: GatewaySettings, *, webhook_url: str = "", webhook_token: str = "", **extra: Any
) -> Gateway:
    """The gateway named by `settings.name`. `extra` reaches the constructor as keywords
    (e.g. `transport=` for HTTP gateways under test)."""
    cls = gateway_class(settings.name)
    return cls(settings, webhook_url=webhook_url, webhook_token=webhook_token, **extra)
