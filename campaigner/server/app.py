"""The daemon's one ASGI app: webhooks here, health, metrics and ingest added by the daemon."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from campaigner.clock import Clock
from campaigner.config import Settings
from campaigner.gateways.base import Gateway
from campaigner.server.guard import CloseUnread, Guard
from campaigner.server.shop_webhooks import shop_webhook_routes
from campaigner.server.webhooks import WebhookContext, webhook_routes


def create_app(
    *,
    settings: Settings,
    sessions: sessionmaker[Session],
    clock: Clock,
    gateways: Mapping[str, Gateway],
    extra_routes: Sequence[BaseRoute] = (),
    nps_windows: Callable[[], Mapping[str, timedelta]] = dict,
    guard: Guard | None = None,
) -> Starlette:
    """`gateways` maps the name used in webhook URLs (/webhooks/NAME/...) to its client;
    `guard` is shared with the routes in `extra_routes` that read bodies."""
    guard = guard or Guard.of(settings)
    context = WebhookContext(
        settings=settings,
        sessions=sessions,
        clock=clock,
        gateways=gateways,
        guard=guard,
        nps_windows=nps_windows,
    )
    shop_routes = shop_webhook_routes(
        settings=settings, sessions=sessions, clock=clock, guard=guard
    )
    app = Starlette(
        routes=[*shop_routes, *webhook_routes(context), *extra_routes],
        middleware=[Middleware(CloseUnread)],
    )
    app.state.settings = settings
    app.state.sessions = sessions
    app.state.clock = clock
    app.state.gateways = gateways
    app.state.guard = guard
    return app
