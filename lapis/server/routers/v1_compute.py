"""Lapis' compute API under ``/api/v1``: instances, their lifecycle, and the size catalogue.

Bodies are the compute document as Azure's YAML has it (a JSON object), with
an optional ``"source"`` naming the file it came from so that messages can
point at it. Each handler runs its database work in the thread pool; errors
are LapisError subclasses, which the app turns into ``{"error_code", "message"}``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lapis.api import compute as api
from lapis.server.body import json_object
from lapis.server.context import Workspace
from lapis.server.routers.mlflow._handler import json_response
from lapis.util import now_ms

router = APIRouter(prefix="/api/v1", tags=["compute"])


def _ws(request: Request) -> Workspace:
    ws: Workspace = request.app.state.ws
    return ws


def _who(request: Request) -> str | None:
    principal = getattr(request.state, "principal", None)
    return principal.name if principal is not None else None


async def _body(request: Request) -> tuple[dict[str, Any], str]:
    data = await json_object(request)
    source = data.pop("source", None)
    return data, str(source) if source else "<request>"


def _job(job: Any) -> dict[str, Any]:
    return {
        "name": job.name,
        "status": job.status,
        "status_reason": job.status_reason,
        "created_at": job.created_at,
        "start_time": job.start_time,
        "display_name": job.display_name,
    }


def _view(ws: Workspace, name: str) -> dict[str, Any]:
    c = ws.compute.get(name)
    running, queued = ws.compute.jobs_on(c.name)
    out = ws.compute.describe(c, now_ms(), busy=bool(running or queued))
    out["jobs"] = {"running": [_job(j) for j in running], "queued": [_job(j) for j in queued]}
    out["nodes"] = [asdict(n) for n in ws.compute.nodes(c.name)]
    out["unsupported"] = ws.compute.capabilities(c.name)
    return out


@router.post("/computes", status_code=201, responses={201: {"model": api.ComputeOut}})
async def create_compute(request: Request) -> Response:
    """Create a compute instance from its YAML document (as JSON)."""
    ws = _ws(request)
    doc, source = await _body(request)

    def work() -> dict[str, Any]:
        behalf = doc.get("create_on_behalf_of")
        assigned = behalf.get("user_object_id") if isinstance(behalf, dict) else None
        assigned = assigned or doc.get("assigned_user")
        if isinstance(assigned, str) and assigned:  # an existing user, spelt as stored
            doc["assigned_user"] = ws.auth.user_name(assigned)
            doc.pop("create_on_behalf_of", None)
        c = ws.compute.create(doc, source=source, created_by=_who(request))
        return ws.compute.describe(c)

    return json_response(await run_in_threadpool(work), status=201)


@router.get("/computes", responses={200: {"model": api.ComputeList}})
async def list_computes(request: Request) -> Response:
    ws = _ws(request)

    def work() -> list[dict[str, Any]]:
        now = now_ms()
        return [ws.compute.describe(c, now) for c in ws.compute.list()]

    return json_response({"computes": await run_in_threadpool(work)})


@router.get("/computes/{name}", responses={200: {"model": api.ComputeDetail}})
async def get_compute(request: Request, name: str) -> Response:
    """One compute with its running and queued jobs, and when it will next stop or start."""
    ws = _ws(request)
    return json_response(await run_in_threadpool(_view, ws, name))


@router.patch("/computes/{name}", responses={200: {"model": api.ComputeDetail}})
async def update_compute(request: Request, name: str) -> Response:
    """Change description, tags, idle shutdown or schedules (size and SSH are fixed)."""
    ws = _ws(request)
    doc, source = await _body(request)

    def work() -> dict[str, Any]:
        ws.compute.update(name, doc, source=source)
        return _view(ws, name)

    return json_response(await run_in_threadpool(work))


@router.post("/computes/{name}/start", responses={200: {"model": api.ComputeDetail}})
async def start_compute(request: Request, name: str) -> Response:
    ws = _ws(request)

    def work() -> dict[str, Any]:
        ws.compute.start(name, by=_who(request))
        return _view(ws, name)

    return json_response(await run_in_threadpool(work))


@router.post("/computes/{name}/stop", responses={200: {"model": api.ComputeDetail}})
async def stop_compute(request: Request, name: str) -> Response:
    """Stop taking jobs: running jobs finish, queued jobs wait for the next start."""
    ws = _ws(request)

    def work() -> dict[str, Any]:
        ws.compute.stop(name, by=_who(request))
        return _view(ws, name)

    return json_response(await run_in_threadpool(work))


@router.post("/computes/{name}/restart", responses={200: {"model": api.ComputeDetail}})
async def restart_compute(request: Request, name: str) -> Response:
    ws = _ws(request)

    def work() -> dict[str, Any]:
        ws.compute.restart(name, by=_who(request))
        return _view(ws, name)

    return json_response(await run_in_threadpool(work))


@router.delete("/computes/{name}", responses={200: {"model": api.ComputeDeleted}})
async def delete_compute(request: Request, name: str) -> Response:
    """Delete an instance that has no running or queued job (its quota is released)."""
    ws = _ws(request)

    def work() -> dict[str, Any]:
        c = ws.compute.get(name)
        ws.compute.delete(name, by=_who(request))
        return {"name": c.name, "deleted": True}

    return json_response(await run_in_threadpool(work))


@router.get("/compute-sizes", responses={200: {"model": api.SizeList}})
async def list_sizes(request: Request) -> Response:
    """The VM size catalogue: what fits this host and how much quota each family has left."""
    ws = _ws(request)
    sizes = await run_in_threadpool(ws.compute.list_sizes)
    return json_response({"sizes": sizes, "host": asdict(ws.compute.host)})
