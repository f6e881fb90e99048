"""Endpoints: online endpoints with their deployments' health, and batch endpoints.

The list and the detail page read the services in-process like every studio
page: the endpoint records (``ws.endpoints``), the deployments with their
instances (``ws.deployments.describe``, which asks the instance manager for
the live state) and the route table (``ws.routes``) for ready/total counts.
The page's live parts — the deployments' health, the telemetry charts — poll
small routes of their own (:mod:`.endpoint_actions` holds those and the
forms that change things).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lapis.server.studio.pages.home import endpoint_health
from lapis.server.studio.web import render

router = APIRouter(include_in_schema=False)

PLACEHOLDER = '{"input_data": [[1.0, 2.0, 3.0]]}'
WINDOWS = (5, 15, 60)  # minutes of telemetry the charts can show


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def deployment_rows(ws: Any, endpoint: str) -> list[dict[str, Any]]:
    """Each deployment as the API describes it, plus its model's name and version."""
    rows = []
    for d in ws.deployments.list(endpoint):
        row = ws.deployments.describe(d).model_dump()
        row["model_name"] = d.model_name
        row["model_version"] = d.model_version
        instances = [i for i in row["instances"] if i.get("state") != "Draining"]
        row["ready_count"] = sum(1 for i in instances if i.get("ready"))
        row["instance_total"] = len(instances)
        rows.append(row)
    return rows


def find_sample(ws: Any, rows: list[dict[str, Any]]) -> str | None:
    """An example request for a deployment's model (most traffic first): a request file
    stored with it, or one built from its MLflow signature (``lapis.registry.examples``)."""
    from lapis.registry.examples import example_request

    for row in sorted(rows, key=lambda r: -int(r.get("traffic") or 0)):
        found = example_request(ws.models, row["model_name"], row["model_version"])
        if found is not None:
            return found
    return None


@router.get("/endpoints")
async def endpoints_list(request: Request) -> Response:
    ws = request.app.state.ws
    base = base_url(request)

    def gather() -> dict[str, Any]:
        online = [
            {"e": ws.endpoints.describe(e, base), "health": endpoint_health(ws, e.name)}
            for e in ws.endpoints.list()
        ]
        batch = []
        if ws.batch is not None:
            for b in ws.batch.list():
                batch.append({"e": ws.batch.describe(b, base), "jobs": ws.batch.jobs_of(b.name, 5)})
        return {"online": online, "batch": batch}

    ctx = await run_in_threadpool(gather)
    return render(request, "endpoints/list.html", ctx, section="endpoints")


@router.get("/endpoints/{name}")
async def endpoint_page(request: Request, name: str) -> Response:
    ws = request.app.state.ws
    base = base_url(request)

    def gather() -> dict[str, Any]:
        e = ws.endpoints.get(name)  # 404 with the known names
        rows = deployment_rows(ws, e.name)
        return {
            "e": ws.endpoints.describe(e, base),
            "deployments": rows,
            "health": endpoint_health(ws, e.name),
            "sample": find_sample(ws, rows),
            "placeholder": PLACEHOLDER,
            "windows": WINDOWS,
        }

    ctx = await run_in_threadpool(gather)
    return render(request, "endpoints/endpoint.html", ctx, section="endpoints")


@router.get("/endpoints/{name}/deployments")
async def deployments_fragment(request: Request, name: str) -> Response:
    """The deployments' health table, polled by the endpoint page."""
    ws = request.app.state.ws

    def gather() -> dict[str, Any]:
        e = ws.endpoints.get(name)
        return {"e": {"name": e.name}, "deployments": deployment_rows(ws, e.name)}

    return render(request, "endpoints/_deployments.html", await run_in_threadpool(gather))
