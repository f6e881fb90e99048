"""Computes: the list, one instance's page with its lifecycle buttons, and the create form.

State is live: the list's rows and the instance's state block are fragments
htmx polls every 2 s, so Stopping → Stopped shows without a reload. The
create form checks the name as the user types with the API's own rule
(:func:`lapis.specs.names.name_problem`), shows each size with its family's
quota left (``ComputeService.list_sizes``), and shows an API refusal (quota,
a taken name) next to the form rather than as a page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lapis.entities.compute import ComputeType
from lapis.errors import InvalidParameterValue, LapisError
from lapis.server.studio.web import render
from lapis.specs.compute import DEFAULT_SIZE
from lapis.specs.names import RULES, name_problem
from lapis.util import now_ms

router = APIRouter(include_in_schema=False)


def _who(request: Request) -> str | None:
    principal = getattr(request.state, "principal", None)
    return principal.name if principal is not None else None


def _rows(ws: Any) -> list[dict[str, Any]]:
    running, queued = ws.jobs.counts()
    now = now_ms()
    return [
        {
            **ws.compute.describe(c, now).model_dump(),
            "running": running.get(c.name, 0),
            "queued": queued.get(c.name, 0),
        }
        for c in ws.compute.list()
    ]


def _view(ws: Any, name: str, history: bool = False) -> dict[str, Any]:
    c = ws.compute.get(name)
    running, queued = ws.compute.jobs_on(c.name)
    view = ws.compute.describe(c, now_ms(), busy=bool(running or queued))
    events = ws.compute.events(c.name) if history and c.type != ComputeType.LOCAL.value else []
    nodes = ws.compute.nodes(c.name) if c.type == ComputeType.CLUSTER.value else []
    return {"c": view, "running": running, "queued": queued, "events": events, "nodes": nodes}


# --- list and create --------------------------------------------------------------------
@router.get("/compute")
async def compute_list(request: Request) -> Response:
    rows = await run_in_threadpool(_rows, request.app.state.ws)
    return render(request, "compute/list.html", {"rows": rows}, section="compute")


@router.get("/compute/_rows")
async def compute_rows(request: Request) -> Response:
    """The list's table body (polled: states change on their own)."""
    rows = await run_in_threadpool(_rows, request.app.state.ws)
    return render(request, "compute/_rows.html", {"rows": rows})


@router.get("/compute/_new")
async def compute_new(request: Request) -> Response:
    sizes = await run_in_threadpool(request.app.state.ws.compute.list_sizes)
    fitting = [s.name for s in sizes if s.fits_host]
    default = DEFAULT_SIZE if DEFAULT_SIZE in fitting or not fitting else fitting[0]
    ctx = {"sizes": sizes, "default_size": default, "rules": RULES}
    return render(request, "compute/new.html", ctx, section="compute")


@router.get("/compute/_new/check-name")
async def compute_check_name(request: Request, name: str = "") -> Response:
    """The as-you-type check: the first rule the name breaks, or that it is free."""
    ws = request.app.state.ws
    problem = name_problem(name) if name else None
    taken = False
    if name and problem is None:
        if name.lower() == "local":
            problem = "is reserved: 'local' is this host"
        else:
            names = await run_in_threadpool(lambda: [c.name.lower() for c in ws.compute.list()])
            taken = name.lower() in names
    ctx = {"name": name, "problem": problem, "taken": taken}
    return render(request, "compute/_name_check.html", ctx)


@router.post("/compute")
async def compute_create(
    request: Request,
    name: str = Form(""),
    size: str = Form(DEFAULT_SIZE),
    idle_minutes: str = Form(""),
    description: str = Form(""),
    kind: str = Form("computeinstance"),
    min_instances: str = Form("0"),
    max_instances: str = Form("1"),
    idle_seconds: str = Form("120"),
) -> Response:
    """Create an instance or a cluster; a refusal is shown next to the form, success goes to
    its page."""
    ws = request.app.state.ws
    cluster = kind == ComputeType.CLUSTER.value
    doc: dict[str, Any] = {"name": name.strip(), "type": kind if cluster else "computeinstance"}
    doc["size"] = size
    if description.strip():
        doc["description"] = description.strip()
    try:
        if cluster:
            for key, raw in (
                ("min_instances", min_instances),
                ("max_instances", max_instances),
                ("idle_time_before_scale_down", idle_seconds),
            ):
                try:
                    doc[key] = int(raw)
                except ValueError:
                    raise InvalidParameterValue(
                        f"{key.replace('_', ' ')} must be a whole number, not '{raw}'"
                    ) from None
        elif idle_minutes.strip():
            try:
                minutes = int(idle_minutes)
            except ValueError:
                raise InvalidParameterValue(
                    f"Idle shutdown must be a whole number of minutes, not '{idle_minutes}'"
                ) from None
            if minutes > 0:
                doc["idle_time_before_shutdown_minutes"] = minutes
        created = await run_in_threadpool(
            lambda: ws.compute.create(doc, source="the form", created_by=_who(request))
        )
    except LapisError as exc:
        ctx = {"message": exc.message}
        return render(request, "compute/_create_error.html", ctx)
    target = f"/compute/{quote(created.name, safe='')}"
    return Response(status_code=204, headers={"HX-Redirect": target})


# --- one instance ---------------------------------------------------------------------
@router.get("/compute/{name}")
async def compute_page(request: Request, name: str) -> Response:
    ctx = await run_in_threadpool(_view, request.app.state.ws, name, True)
    return render(request, "compute/detail.html", ctx, section="compute")


@router.get("/compute/{name}/state")
async def compute_state(request: Request, name: str) -> Response:
    ctx = await run_in_threadpool(_view, request.app.state.ws, name)
    return render(request, "compute/_state.html", ctx)


def _act(ws: Any, name: str, action: str, who: str | None) -> None:
    """The same service calls as the API: the rules (not on local, not while jobs run)
    live in the compute service."""
    if action == "start":
        ws.compute.start(name, by=who)
    elif action == "stop":
        ws.compute.stop(name, by=who)
    elif action == "restart":
        ws.compute.restart(name, by=who)
    elif action == "preempt":  # a low-priority cluster's drill
        ws.compute.preempt(name)
    else:
        ws.compute.delete(name, by=who)


@router.post("/compute/{name}/{action}")
async def compute_action(request: Request, name: str, action: str, view: str = "") -> Response:
    """Start, stop, restart, delete or (a low-priority cluster) pre-empt a node; answers
    with the live state block (or the list's rows)."""
    if action not in ("start", "stop", "restart", "delete", "preempt"):
        raise InvalidParameterValue(
            f"Unknown compute action '{action}'; use start, stop, restart, delete or preempt"
        )
    ws = request.app.state.ws
    await run_in_threadpool(_act, ws, name, action, _who(request))
    if action == "delete":
        return Response(status_code=204, headers={"HX-Redirect": "/compute"})
    if view == "rows":
        rows = await run_in_threadpool(_rows, ws)
        return render(request, "compute/_rows.html", {"rows": rows})
    ctx = await run_in_threadpool(_view, ws, name)
    return render(request, "compute/_state.html", ctx)
