"""Job schedules under ``/api/v1`` (``az ml schedule``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lapis.server.body import json_object
from lapis.server.context import Workspace
from lapis.server.routers.mlflow._handler import json_response
from lapis.server.routers.v1_jobs import job_dict

router = APIRouter(prefix="/api/v1", tags=["schedules"])


def _ws(request: Request) -> Workspace:
    ws: Workspace = request.app.state.ws
    return ws


@router.post("/schedules")
async def create_schedule(request: Request) -> Response:
    """``{"yaml", "source", "job"}``: a new schedule, or new settings for one (Azure's
    create_or_update); ``job`` is the prepared submission the CLI and SDK make."""
    body = await json_object(request)
    principal = getattr(request.state, "principal", None)
    made = await run_in_threadpool(_ws(request).schedules.create_or_update, body, principal)
    return json_response(made)


@router.get("/schedules")
async def list_schedules(request: Request) -> Response:
    return json_response({"schedules": await run_in_threadpool(_ws(request).schedules.list)})


@router.get("/schedules/{name}")
async def show_schedule(request: Request, name: str) -> Response:
    return json_response(await run_in_threadpool(_ws(request).schedules.get, name))


@router.get("/schedules/{name}/jobs")
async def schedule_jobs(request: Request, name: str) -> Response:
    """The jobs the schedule submitted, newest first."""
    found = await run_in_threadpool(_ws(request).schedules.jobs_of, name)
    return json_response({"jobs": [job_dict(j) for j in found]})


@router.post("/schedules/{name}/enable")
async def enable_schedule(request: Request, name: str) -> Response:
    return json_response(await run_in_threadpool(_ws(request).schedules.set_enabled, name, True))


@router.post("/schedules/{name}/disable")
async def disable_schedule(request: Request, name: str) -> Response:
    return json_response(await run_in_threadpool(_ws(request).schedules.set_enabled, name, False))


@router.delete("/schedules/{name}")
async def delete_schedule(request: Request, name: str) -> Response:
    await run_in_threadpool(_ws(request).schedules.delete, name)
    return json_response({"deleted": name})
