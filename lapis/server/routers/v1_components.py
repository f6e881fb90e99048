"""Components under ``/api/v1`` (``az ml component``): create, list, show, archive."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lapis.api import components as api
from lapis.server.body import json_object
from lapis.server.context import Workspace
from lapis.server.routers.mlflow._handler import json_response

router = APIRouter(prefix="/api/v1", tags=["components"])


def _ws(request: Request) -> Workspace:
    ws: Workspace = request.app.state.ws
    return ws


@router.post("/components", responses={200: {"model": api.ComponentOut}})
async def create_component(request: Request) -> Response:
    """``{"yaml", "source", "snapshot"?}``: a new version, or the same one again."""
    body = await json_object(request)
    principal = getattr(request.state, "principal", None)
    by = principal.name if principal is not None else None
    return json_response(await run_in_threadpool(_ws(request).components.create, body, by))


@router.get("/components", responses={200: {"model": api.ComponentList}})
async def list_components(request: Request, include_archived: bool = False) -> Response:
    found = await run_in_threadpool(_ws(request).components.list, include_archived)
    return json_response({"components": found})


@router.get("/components/{name}/versions", responses={200: {"model": api.ComponentList}})
async def component_versions(request: Request, name: str) -> Response:
    found = await run_in_threadpool(_ws(request).components.versions, name)
    return json_response({"components": found})


@router.get("/components/{name}/versions/{version}", responses={200: {"model": api.ComponentOut}})
async def show_component(request: Request, name: str, version: str) -> Response:
    """One version; ``latest``: the newest not archived."""
    return json_response(await run_in_threadpool(_ws(request).components.get, name, version))


async def _archive(request: Request, name: str, archived: bool) -> Response:
    body: dict[str, Any] = await json_object(request) if await request.body() else {}
    version = body.get("version")
    found = await run_in_threadpool(
        _ws(request).components.archive, name, None if version is None else str(version), archived
    )
    return json_response({"components": found})


@router.post("/components/{name}/archive", responses={200: {"model": api.ComponentList}})
async def archive_component(request: Request, name: str) -> Response:
    return await _archive(request, name, True)


@router.post("/components/{name}/restore", responses={200: {"model": api.ComponentList}})
async def restore_component(request: Request, name: str) -> Response:
    return await _archive(request, name, False)
