"""/healthz and /metrics, mounted into the same ASGI app as the webhooks."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from campaigner.daemon.health import Health
from campaigner.daemon.metrics import Metrics

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def health_routes(health: Health, metrics: Metrics) -> list[BaseRoute]:
    async def healthz(_request: Request) -> JSONResponse:
        ok, body = await run_in_threadpool(health.report)
        return JSONResponse(body, status_code=200 if ok else 503)

    async def metrics_endpoint(_request: Request) -> Response:
        try:
            payload = await run_in_threadpool(metrics.render)
        except Exception as exc:
            return Response(f"# metrics unavailable: {type(exc).__name__}\n", status_code=503)
        return Response(payload, media_type=PROMETHEUS_TEXT)

    return [Route("/healthz", healthz), Route("/metrics", metrics_endpoint)]
