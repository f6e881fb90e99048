"""Lapis' compute API under ``/api/v1``: instances, their lifecycle, and the size catalogue.

Bodies are the compute document as Azure's YAML has it (a JSON object), with
an optional ``"source"`` naming the file it came from so that messages can
point at it. Each handler runs its database work in the thread pool; errors
are LapisError subclasses, which the app turns into ``{"error_code", "message"}``.
"""

from __future__ import annotations

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


@router.post("/computes", status_code=201, responses={201: {"model": api.ComputeOut}})
async def create_compute(request: Request) -> Response:
    """Create a compute instance from its YAML document (as JSON)."""
    ws = _ws(request)
    doc, source = await _body(request)

    def work() -> api.ComputeOut:
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

    def work() -> api.ComputeList:
        now = now_ms()
        return api.ComputeList(computes=[ws.compute.describe(c, now) for c in ws.compute.list()])

    return json_response(await run_in_threadpool(work))


@router.get("/computes/{name}", responses={200: {"model": api.ComputeDetail}})
async def get_compute(request: Request, name: str) -> Response:
    """One compute with its running and queued jobs, and when it will next stop or start."""
    ws = _ws(request)
    return json_response(await run_in_threadpool(ws.compute.detail, name))


@router.get("/computes/{name}/logs")
async def compute_logs(request: Request, name: str) -> Response:
    """An instance's setup log: what its creation and startup scripts printed."""
    text = await run_in_threadpool(_ws(request).compute.setup_log, name)
    return json_response({"name": name, "setup_log": text})


@router.patch("/computes/{name}", responses={200: {"model": api.ComputeDetail}})
async def update_compute(request: Request, name: str) -> Response:
    """Change description, tags, idle shutdown or schedules (size and SSH are fixed)."""
    ws = _ws(request)
    doc, source = await _body(request)

    def work() -> api.ComputeDetail:
        ws.compute.update(name, doc, source=source)
        return ws.compute.detail(name)

    return json_response(await run_in_threadpool(work))


@router.post("/computes/{name}/start", responses={200: {"model": api.ComputeDetail}})
async def start_compute(request: Request, name: str) -> Response:
    ws = _ws(request)

    def work() -> api.ComputeDetail:
        ws.compute.start(name, by=_who(request))
        return ws.compute.detail(name)

    return json_response(await run_in_threadpool(work))


@router.post("/computes/{name}/stop", responses={200: {"model": api.ComputeDetail}})
async def stop_compute(request: Request, name: str) -> Response:
    """Stop taking jobs: running jobs finish, queued jobs wait for the next start."""
    ws = _ws(request)

    def work() -> api.ComputeDetail:
        ws.compute.stop(name, by=_who(request))
        return ws.compute.detail(name)

    return json_response(await run_in_threadpool(work))


@router.post("/computes/{name}/restart", responses={200: {"model": api.ComputeDetail}})
async def restart_compute(request: Request, name: str) -> Response:
    ws = _ws(request)

    def work() -> api.ComputeDetail:
        ws.compute.restart(name, by=_who(request))
        return ws.compute.detail(name)

    return json_response(await run_in_threadpool(work))


@router.post("/computes/{name}/preempt", responses={200: {"model": api.NodePreempted}})
async def preempt_node(request: Request, name: str, node: int | None = None) -> Response:
    """The pre-emption drill of a low-priority cluster: one worker node is taken back (its
    job goes back to the queue), as the cloud does without notice."""
    ws = _ws(request)
    return json_response(await run_in_threadpool(ws.compute.preempt, name, node))


@router.delete("/computes/{name}", responses={200: {"model": api.ComputeDeleted}})
async def delete_compute(request: Request, name: str) -> Response:
    """Delete an instance that has no running or queued job (its quota is released)."""
    ws = _ws(request)

    def work() -> api.ComputeDeleted:
        c = ws.compute.get(name)
        ws.compute.delete(name, by=_who(request))
        return api.ComputeDeleted(name=c.name, deleted=True)

    return json_response(await run_in_threadpool(work))


@router.get("/compute-sizes", responses={200: {"model": api.SizeList}})
async def list_sizes(request: Request) -> Response:
    """The VM size catalogue: what fits this host and how much quota each family has left."""
    ws = _ws(request)
    return json_response(await run_in_threadpool(ws.compute.sizes))
