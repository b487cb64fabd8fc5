"""Webhooks providers call: delivery reports and inbound replies, for each configured gateway.

`/webhooks/NAME/...` names a route label (`kannel`, or `backup` for the fallback table) or a
provider: callback URLs set once in a provider's panel name the provider, whichever route
sent the message. A report is matched to rows sent through any route it may concern, and
parsed and verified by that route's own gateway.

Nothing is read or changed before the caller proves who it is, and each route has its own
proof: the provider's signature where it signs its webhooks (Twilio), else the gateway's
own `webhook_token` (or the shared `server.webhook_token`), given in a header or the query
string and checked before the body is read. So a token for one gateway cannot post a forged
STOP through another. Unknown ledger ids are answered 200 all the same, since providers
retry anything else for days; values no provider sends are answered 400.

Parsed updates go through `UpdateQueue` (`campaigner.server.updates`): applied in batches,
one transaction each, and answered only once committed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl

from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from campaigner.clock import Clock
from campaigner.config import Settings
from campaigner.gateways.base import Gateway, WebhookRequest
from campaigner.inbound import check_report, handle_inbound
from campaigner.server.guard import TOKEN_HEADER, Guard, Refused, matches_any
from campaigner.server.updates import UpdateQueue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WebhookContext:
    settings: Settings
    sessions: sessionmaker[Session]
    clock: Clock
    gateways: Mapping[str, Gateway]  # route label -> gateway
    guard: Guard
    # Current nps_survey rules and their response windows (rules may be reloaded).
    nps_windows: Callable[[], Mapping[str, timedelta]] = dict


def webhook_secret(settings: Settings, gateway: Gateway) -> str:
    """The token a gateway's webhooks must carry: its own, else the shared one ('' = none,
    and every call is refused rather than anyone accepted)."""
    if gateway.webhook_token:
        return gateway.webhook_token
    shared = settings.server.webhook_token
    return shared.get_secret_value() if shared else ""


def _given_token(request: Request) -> str:
    return request.headers.get(TOKEN_HEADER) or request.query_params.get("token") or ""


def _strict_pairs(text: str) -> dict[str, str]:
    """Form or query parameters; UnicodeDecodeError where a percent-escape is not UTF-8
    (Starlette would quietly put U+FFFD in its place)."""
    return dict(parse_qsl(text, keep_blank_values=True, errors="strict"))


def _hook(request: Request, body: bytes, public_base: str, kind: str) -> WebhookRequest:
    content_type = request.headers.get("content-type", "")
    try:
        query = _strict_pairs(request.scope["query_string"].decode("latin-1"))
        form: dict[str, str] = {}
        if content_type.startswith("application/x-www-form-urlencoded"):
            form = _strict_pairs(body.decode("utf-8"))
    except UnicodeDecodeError:
        log.warning("webhook %s: parameters that are not UTF-8", request.url.path)
        raise Refused(400, "parameters that are not UTF-8") from None
    url = str(request.url)
    if public_base:
        # The URL the provider was given (and signs), even behind a proxy.
        raw = request.url.query
        url = f"{public_base}/{kind}" + (f"?{raw}" if raw else "")
    return WebhookRequest(
        method=request.method,
        url=url,
        headers={key.lower(): value for key, value in request.headers.items()},
        query=query,
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


async def _authenticated(
    context: WebhookContext, routes: Mapping[str, Gateway], name: str, kind: str, request: Request
) -> tuple[Gateway, WebhookRequest]:
    """The route's gateway that accepts the caller's proof, and the request; Refused else.

    Tokens come first: they are checked on the headers and query alone, so a caller without
    one never gets its body read. Only a signature header lets a body be read, unverified.
    """
    given = _given_token(request)
    if not routes:
        known = [webhook_secret(context.settings, g) for g in context.gateways.values()]
        if matches_any(given, known):
            raise Refused(404, "unknown gateway")
        raise Refused(401, "unauthorised")
    for gateway in routes.values():
        if gateway.webhook_signature_header() is None and matches_any(
            given, [webhook_secret(context.settings, gateway)]
        ):
            body = await context.guard.body(request)
            return gateway, _hook(request, body, _public_base(gateway, name), kind)
    signed = [
        gateway
        for gateway in routes.values()
        if (header := gateway.webhook_signature_header()) and header in request.headers
    ]
    if not signed:
        log.warning("webhook %s/%s: missing or wrong token, or no signature", name, kind)
        raise Refused(401, "unauthorised")
    body = await context.guard.unverified_body(request)
    for gateway in signed:
        hook = _hook(request, body, _public_base(gateway, name), kind)
        if gateway.verify_webhook(hook):
            return gateway, hook
    log.warning("webhook %s/%s: wrong signature", name, kind)
    raise Refused(401, "unauthorised")


Apply = Callable[[Gateway, Collection[str], str, WebhookRequest], Awaitable[str]]


def _endpoint(
    context: WebhookContext, kind: str, apply: Apply
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        name = request.path_params["gateway"]
        routes = routes_for(context.gateways, name)
        try:
            gateway, hook = await _authenticated(context, routes, name, kind, request)
        except Refused as exc:
            return PlainTextResponse(exc.detail, status_code=exc.status, headers=exc.headers)
        try:
            text = await apply(gateway, list(routes), name, hook)
        except ValueError as exc:
            log.warning("webhook %s/%s refused: %s", name, kind, exc)
            return PlainTextResponse(str(exc), status_code=400)
        return PlainTextResponse(text)

    return endpoint


def webhook_routes(context: WebhookContext) -> list[BaseRoute]:
    """`/webhooks/{gateway}/dlr` and `/webhooks/{gateway}/inbound`, GET and POST."""

    updates = UpdateQueue(context.sessions, context.clock)

    async def delivery(
        gateway: Gateway, labels: Collection[str], name: str, hook: WebhookRequest
    ) -> str:
        reports = gateway.parse_delivery_report(hook)
        for report in reports:
            check_report(report)
        known = await updates.reports(reports, labels)
        return f"ok {sum(known)}/{len(known)}"

    async def inbound(
        gateway: Gateway, labels: Collection[str], name: str, hook: WebhookRequest
    ) -> str:
        messages = gateway.parse_inbound(hook)

        def handle(session: Session, now: datetime) -> str:
            return ",".join(
                handle_inbound(
                    session,
                    sms,
                    gateway=name,
                    settings=context.settings,
                    now=now,
                    nps_windows=context.nps_windows(),
                )
                for sms in messages
            )

        actions = await updates.inbound(handle) if messages else ""
        return "ok " + actions

    methods = ["GET", "POST"]
    return [
        Route("/webhooks/{gateway}/dlr", _endpoint(context, "dlr", delivery), methods=methods),
        Route(
            "/webhooks/{gateway}/inbound", _endpoint(context, "inbound", inbound), methods=methods
        ),
    ]
