"""Components: the registered command components, and each one's versions with its
inputs (type, default, range, choices), outputs, environment and command."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lapis.jobs.pipelines import using_component
from lapis.server.studio.web import render

router = APIRouter(include_in_schema=False)


@router.get("/components")
async def components_page(request: Request, include_archived: bool = False) -> Response:
    found = await run_in_threadpool(request.app.state.ws.components.list, include_archived)
    ctx = {"components": found, "include_archived": include_archived}
    return render(request, "components/list.html", ctx, section="components")


@router.get("/components/{name}")
async def component_page(request: Request, name: str, version: str | None = None) -> Response:
    """One version (default: the latest not archived) and the list of every version."""
    ws = request.app.state.ws
    versions = await run_in_threadpool(ws.components.versions, name)
    shown = next((v for v in versions if v.version == version), None) if version else None
    if shown is None:
        shown = next((v for v in versions if not v.archived), versions[0])
    used = await run_in_threadpool(using_component, ws.jobs, name)
    ctx = {"c": shown, "versions": versions, "used": used}
    return render(request, "components/detail.html", ctx, section="components")
