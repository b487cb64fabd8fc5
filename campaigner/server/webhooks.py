"""Webhooks providers call: delivery reports and inbound replies, for each configured gateway.

Nothing is read or changed before the caller proves who it is: the provider's signature
where it has one (Twilio), else the shared `server.webhook_token`. Unknown ledger ids are
answered 200 all the same, since providers retry anything else for days.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
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
from campaigner.server.guard import TOKEN_HEADER, Refused, matches_any, read_body

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WebhookContext:
    settings: Settings
    sessions: sessionmaker[Session]
    clock: Clock
    gateways: Mapping[str, Gateway]
    # Current nps_survey rules and their response windows (rules may be reloaded).
    nps_windows: Callable[[], Mapping[str, timedelta]] = dict


def token_matches(settings: Settings, request: WebhookRequest) -> bool:
    expected = settings.server.webhook_token
    if expected is None:
        return False  # no secret configured: refuse rather than accept anyone
    given = request.headers.get(TOKEN_HEADER) or request.query.get("token") or ""
    return matches_any(given, [expected.get_secret_value()])


async def _read(request: Request, public_base: str, kind: str, limit: int) -> WebhookRequest:
    body = await read_body(request, limit)
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


def _authorised(context: WebhookContext, gateway: Gateway, hook: WebhookRequest) -> bool:
    verdict = gateway.verify_webhook(hook)
    return verdict if verdict is not None else token_matches(context.settings, hook)


def _endpoint(
    context: WebhookContext, kind: str, apply: Callable[[Gateway, str, WebhookRequest], str]
) -> Callable[[Request], object]:
    async def endpoint(request: Request) -> Response:
        name = request.path_params["gateway"]
        gateway = context.gateways.get(name)
        base = gateway.webhook_url if gateway else ""
        try:
            hook = await _read(request, base, kind, context.settings.server.max_body_bytes)
        except Refused as exc:
            return PlainTextResponse(exc.detail, status_code=exc.status)
        if gateway is None:
            if token_matches(context.settings, hook):
                return PlainTextResponse("unknown gateway", status_code=404)
            return PlainTextResponse("unauthorised", status_code=401)
        if not _authorised(context, gateway, hook):
            log.warning("webhook %s/%s: missing or wrong secret", name, kind)
            return PlainTextResponse("unauthorised", status_code=401)
        try:
            text = await run_in_threadpool(apply, gateway, name, hook)
        except ValueError as exc:
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
