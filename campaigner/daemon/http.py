"""/healthz and /metrics, mounted into the same ASGI app as the webhooks."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from campaigner.config import ServerSettings
from campaigner.daemon.health import Health
from campaigner.daemon.metrics import Metrics
from campaigner.server.guard import carries_admin_token

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def health_routes(health: Health, metrics: Metrics, server: ServerSettings) -> list[BaseRoute]:
    """/healthz answers anyone with the status and the tasks in trouble; the details (raw
    errors, rule errors, circuits) only to a caller with the webhook or an API token."""

    async def healthz(request: Request) -> JSONResponse:
        details = carries_admin_token(request, server)
        ok, body = await run_in_threadpool(lambda: health.report(details=details))
        return JSONResponse(body, status_code=200 if ok else 503)

    async def metrics_endpoint(_request: Request) -> Response:
        try:
            payload = await run_in_threadpool(metrics.render)
        except Exception as exc:
            return Response(f"# metrics unavailable: {type(exc).__name__}\n", status_code=503)
        return Response(payload, media_type=PROMETHEUS_TEXT)

    return [Route("/healthz", healthz), Route("/metrics", metrics_endpoint)]
