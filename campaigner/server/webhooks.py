"""Webhooks providers call: delivery reports and inbound replies, for each configured gateway.

Nothing is read or changed before the caller proves who it is, and each gateway has its
own proof: the provider's signature where it signs its webhooks (Twilio), else the
gateway's own `webhook_token` (or the shared `server.webhook_token`), given in a header or
the query string and checked before the body is read. So a token for one gateway cannot
post a forged STOP through another. Unknown ledger ids are answered 200 all the same,
since providers retry anything else for days; values no provider sends are answered 400.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
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
from campaigner.server.guard import Guard, Refused, matches_any

log = logging.getLogger(__name__)

TOKEN_HEADER = "x-campaigner-token"


@dataclass(frozen=True)
class WebhookContext:
    settings: Settings
    sessions: sessionmaker[Session]
    clock: Clock
    gateways: Mapping[str, Gateway]
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


async def _read(
    request: Request, public_base: str, kind: str, body: Callable[[Request], Awaitable[bytes]]
) -> WebhookRequest:
    data = await body(request)
    content_type = request.headers.get("content-type", "")
    try:
        query = _strict_pairs(request.scope["query_string"].decode("latin-1"))
        form: dict[str, str] = {}
        if content_type.startswith("application/x-www-form-urlencoded"):
            form = _strict_pairs(data.decode("utf-8"))
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
        body=data,
    )


async def _authenticated(
    context: WebhookContext, name: str, kind: str, request: Request
) -> tuple[Gateway, WebhookRequest]:
    """The gateway and its request once the caller proved who it is; Refused otherwise."""
    gateway = context.gateways.get(name)
    if gateway is None:
        known = [webhook_secret(context.settings, g) for g in context.gateways.values()]
        if matches_any(_given_token(request), known):
            raise Refused(404, "unknown gateway")
        raise Refused(401, "unauthorised")
    header = gateway.webhook_signature_header()
    if header is not None:
        if header not in request.headers:
            log.warning("webhook %s/%s: no %s header", name, kind, header)
            raise Refused(401, "unauthorised")
        hook = await _read(request, gateway.webhook_url, kind, context.guard.unverified_body)
        if not gateway.verify_webhook(hook):
            log.warning("webhook %s/%s: wrong signature", name, kind)
            raise Refused(401, "unauthorised")
        return gateway, hook
    if not matches_any(_given_token(request), [webhook_secret(context.settings, gateway)]):
        log.warning("webhook %s/%s: missing or wrong token", name, kind)
        raise Refused(401, "unauthorised")
    return gateway, await _read(request, gateway.webhook_url, kind, context.guard.body)


def _endpoint(
    context: WebhookContext, kind: str, apply: Callable[[Gateway, str, WebhookRequest], str]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        name = request.path_params["gateway"]
        try:
            gateway, hook = await _authenticated(context, name, kind, request)
        except Refused as exc:
            return PlainTextResponse(exc.detail, status_code=exc.status, headers=exc.headers)
        try:
            text = await run_in_threadpool(apply, gateway, name, hook)
        except ValueError as exc:
            log.warning("webhook %s/%s refused: %s", name, kind, exc)
            return PlainTextResponse(str(exc), status_code=400)
        return PlainTextResponse(text)

    return endpoint


def webhook_routes(context: WebhookContext) -> list[BaseRoute]:
    """`/webhooks/{gateway}/dlr` and `/webhooks/{gateway}/inbound`, GET and POST."""

    def delivery(gateway: Gateway, name: str, hook: WebhookRequest) -> str:
        reports = gateway.parse_delivery_report(hook)
        with context.sessions.begin() as session:
            known = [
                apply_delivery_report(session, report, gateway=name, now=context.clock.now())
                for report in reports
            ]
        return f"ok {sum(known)}/{len(known)}"

    def inbound(gateway: Gateway, name: str, hook: WebhookRequest) -> str:
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
