"""Scoring telemetry: ``GET /api/v1/endpoints/{name}/metrics`` and Prometheus ``GET /metrics``.

Both read the in-memory telemetry the scoring proxy records
(:mod:`lapis.endpoints.data.telemetry`) and the route table for instance health,
so they run on the event loop without the database, except for one look-up
that tells an unknown endpoint (404) from one with nothing deployed yet.
The scoring route itself is not here: it is the raw ASGI
:class:`lapis.endpoints.data.proxy.ScoringProxy`, in front of everything.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lapis.api import endpoints as api
from lapis.endpoints.data.telemetry import RING_SECONDS, instance_states, prometheus
from lapis.server.context import Workspace
from lapis.server.routers.mlflow._handler import json_response

router = APIRouter(tags=["endpoints"])


def _ws(request: Request) -> Workspace:
    ws: Workspace = request.app.state.ws
    return ws


@router.get("/api/v1/endpoints/{name}/metrics", responses={200: {"model": api.EndpointMetrics}})
async def endpoint_metrics(
    request: Request,
    name: str,
    window: int = Query(300, ge=1, le=RING_SECONDS, description="Seconds of history."),
    step: int | None = Query(None, ge=1, le=RING_SECONDS, description="Seconds per point."),
) -> Response:
    """Totals, per-deployment figures, instance health and time series of one endpoint."""
    ws = _ws(request)
    route = ws.routes.get(name)
    if route is None:
        found = await run_in_threadpool(ws.endpoints.get, name)  # 404 with the known names
        display = found.name
    else:
        display = route.name
    body = ws.telemetry.report(display, window, step)
    deployments: dict[str, Any] = body["deployments"]
    if route is not None:
        for dep in route.deployments.values():
            entry = deployments.setdefault(dep.name, _empty(ws, display, dep.name, window, step))
            entry["instances"] = [
                {
                    "name": inst.label,
                    "port": inst.port,
                    "ready": inst.ready,
                    "draining": inst.draining,
                    "in_flight": inst.in_flight,
                }
                for inst in dep.instances
            ]
            entry["instance_states"] = instance_states(dep.instances)
            entry["max_concurrent_requests_per_instance"] = dep.max_concurrent_requests_per_instance
            entry["request_timeout_ms"] = dep.request_timeout_ms
        body["traffic"] = dict(route.traffic)
        body["mirror_traffic"] = dict(route.mirror_traffic)
    return json_response(body)


def _empty(ws: Workspace, endpoint: str, deployment: str, window: int, step: int | None) -> Any:
    series = ws.telemetry.series(endpoint, deployment)
    now = ws.telemetry.clock()
    span = max(1, min(window, RING_SECONDS))
    return series.summary() | {"timeseries": series.window(now, span, step or max(1, span // 300))}


@router.get(
    "/metrics",
    tags=["server"],
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {"text/plain; version=0.0.4; charset=utf-8": {"schema": {"type": "string"}}},
        }
    },
)
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus text format; scrape it with ``authorization: {credentials: <token>}``."""
    ws = _ws(request)
    return Response(
        prometheus(ws.telemetry, ws.routes),
        media_type="text/plain; version=0.0.4; charset=utf-8",
    )
