"""Home: what is happening in the workspace — recent jobs, computes, endpoints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lapis.server.studio.web import render

router = APIRouter(include_in_schema=False)


def endpoint_health(ws: Any, name: str) -> dict[str, Any]:
    """Ready/total instances of an endpoint's deployments, from the live route table."""
    route = ws.routes.get(name)
    if route is None:
        return {"ready": 0, "total": 0, "state": "no deployment serving"}
    instances = [i for d in route.deployments.values() for i in d.instances if not i.draining]
    ready = sum(1 for i in instances if i.ready)
    state = "healthy" if instances and ready == len(instances) else "degraded"
    if not instances or not ready:
        state = "down" if instances else "no instances"
    return {"ready": ready, "total": len(instances), "state": state}


@router.get("/")
async def home(request: Request) -> Response:
    ws = request.app.state.ws

    def gather() -> dict[str, Any]:
        endpoints = []
        for e in ws.endpoints.list():
            endpoints.append({"e": e, "health": endpoint_health(ws, e.name)})
        return {
            "jobs": ws.jobs.list(max_results=10),
            "computes": ws.compute.list(),
            "endpoints": endpoints,
        }

    return render(request, "home.html", await run_in_threadpool(gather), section="home")
