"""Webhooks providers call: delivery reports and inbound replies, for each configured gateway.

`/webhooks/NAME/...` names a route label (`kannel`, or `backup` for the fallback table) or a
provider: callback URLs set once in a provider's panel name the provider, whichever route
sent the message. A report is matched to rows sent through any route it may concern, and
parsed and verified by that route's own gateway.

Nothing is read or changed before the caller proves who it is: the provider's signature
where it has one (Twilio), else the shared `server.webhook_token`. Unknown ledger ids are
answered 200 all the same, since providers retry anything else for days.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qsl

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from campaigner.clock import Clock
from campaigner.config import Settings
from campaigner.gateways.base import Gateway, WebhookRequest
from campaigner.inbound import apply_delivery_report, handle_inbound
from campaigner.server.guard import Refused, matches_any, read_body

log = logging.getLogger(__name__)

TOKEN_HEADER = "x-campaigner-token"


@dataclass(frozen=True)
class WebhookContext:
    settings: Settings
    sessions: sessionmaker[Session]
    clock: Clock
    gateways: Mapping[str, Gateway]  # route label -> gateway
    # Current nps_survey rules and their response windows (rules may be reloaded).
    nps_windows: Callable[[], Mapping[str, timedelta]] = dict


def token_matches(settings: Settings, request: WebhookRequest) -> bool:
    expected = settings.server.webhook_token
    if expected is None:
        return False  # no secret configured: refuse rather than accept anyone
    given = request.headers.get(TOKEN_HEADER) or request.query.get("token") or ""
    return matches_any(given, [expected.get_secret_value()])


def _hook(request: Request, body: bytes, public_base: str, kind: str) -> WebhookRequest:
    content_type = request.headers.get("content-type", "")
    form: dict[str, str] = {}
    if content_type.startswith("application/x-www-form-urlencoded"):
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    url = str(request.url)
    if public_base:
        # The URL the provider was given (and signs), even behind a proxy.
        query = request.url.query
        url = f"{public_base}/{kind}" + (f"?{query}" if query else "")
    return WebhookRequest(
        method=request.method,
        url=url,
        headers={key.lower(): value for key, value in request.headers.items()},
        query=dict(request.query_params),
        form=form,
        body=body,
    )


def routes_for(gateways: Mapping[str, Gateway], name: str) -> dict[str, Gateway]:
    """The routes a webhook path may concern: the one labelled `name` first, then every
    route whose gateway is the provider `name`."""
    exact = {label: gateway for label, gateway in gateways.items() if label == name}
    by_provider = {label: gateway for label, gateway in gateways.items() if gateway.name == name}
    return {**exact, **by_provider}


def _public_base(gateway: Gateway, name: str) -> str:
    """The URL the provider was given for path `name` (and signs), even behind a proxy."""
    if not gateway.webhook_url:
        return ""
    return f"{gateway.webhook_url.rsplit('/', 1)[0]}/{name}"


def _authorised(context: WebhookContext, gateway: Gateway, hook: WebhookRequest) -> bool:
    verdict = gateway.verify_webhook(hook)
    return verdict if verdict is not None else token_matches(context.settings, hook)


Apply = Callable[[Gateway, Collection[str], str, WebhookRequest], str]


def _endpoint(context: WebhookContext, kind: str, apply: Apply) -> Callable[[Request], object]:
    async def endpoint(request: Request) -> Response:
        name = request.path_params["gateway"]
        routes = routes_for(context.gateways, name)
        limit = context.settings.server.max_body_bytes
        try:
            body = await read_body(request, limit)
        except Refused as exc:
            return PlainTextResponse(exc.detail, status_code=exc.status)
        if not routes:
            hook = _hook(request, body, "", kind)
            if token_matches(context.settings, hook):
                return PlainTextResponse("unknown gateway", status_code=404)
            return PlainTextResponse("unauthorised", status_code=401)
        # The first route whose gateway accepts the caller's proof parses the request.
        for gateway in routes.values():
            hook = _hook(request, body, _public_base(gateway, name), kind)
            if _authorised(context, gateway, hook):
                break
        else:
            log.warning("webhook %s/%s: missing or wrong secret", name, kind)
            return PlainTextResponse("unauthorised", status_code=401)
        try:
            text = await run_in_threadpool(apply, gateway, list(routes), name, hook)
        except ValueError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        return PlainTextResponse(text)

    return endpoint


def webhook_routes(context: WebhookContext) -> list[BaseRoute]:
    """`/webhooks/{gateway}/dlr` and `/webhooks/{gateway}/inbound`, GET and POST."""

    def delivery(gateway: Gateway, labels: Collection[str], name: str, hook: WebhookRequest) -> str:
        reports = gateway.parse_delivery_report(hook)
        with context.sessions.begin() as session:
            known = [
                apply_delivery_report(session, report, routes=labels, now=context.clock.now())
                for report in reports
            ]
        return f"ok {sum(known)}/{len(known)}"

    def inbound(gateway: Gateway, labels: Collection[str], name: str, hook: WebhookRequest) -> str:
        messages = gateway.parse_inbound(hook)
        with context.sessions.begin() as session:
            actions = [
                handle_inbound(
                    session,
                    sms,
                    gateway=name,
                    settings=context.settings,
                    now=context.clock.now(),
                    nps_windows=context.nps_windows(),
                )
                for sms in messages
            ]
        return "ok " + ",".join(actions)

    methods = ["GET", "POST"]
    return [
        Route("/webhooks/{gateway}/dlr", _endpoint(context, "dlr", delivery), methods=methods),
        Route(
            "/webhooks/{gateway}/inbound", _endpoint(context, "inbound", inbound), methods=methods
        ),
    ]
