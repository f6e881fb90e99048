"""A batch endpoint's page: its deployments, its invocations, and a form to invoke it.

Everything goes through :class:`lapis.endpoints.batch.service.BatchService` in-process,
the same calls the API makes, so the page's messages read as the CLI's do:
**Invoke** calls ``ws.batch.invoke`` (an unknown folder, or no default
deployment, comes back as the service's error in the message area) and sends
the browser to the new job's page (``HX-Redirect``), where the job system
shows its status and log. **Make default** calls ``ws.batch.update`` with
``defaults.deployment_name``, as ``lapis batch-endpoint update
--default-deployment`` does. The invocations list polls every 3 s while any of
them has not ended.

The page lives at ``/batch-endpoints/{name}``, apart from the online
endpoints' ``/endpoints/{name}/…`` so that no endpoint name can shadow another.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lapis.entities.job_status import JobStatus
from lapis.errors import ResourceDoesNotExist
from lapis.server.studio.pages import endpoints as endpoints_pages
from lapis.server.studio.pages.jobs import duration_ms
from lapis.server.studio.web import render
from lapis.util import now_ms

router = APIRouter(include_in_schema=False)

MAX_INVOCATIONS = 50


def _batch(ws: Any) -> Any:
    if ws.batch is None:
        raise ResourceDoesNotExist("Batch endpoints are not available on this server")
    return ws.batch


def _deployments(ws: Any, endpoint: str) -> list[dict[str, Any]]:
    """Each deployment as the API describes it, plus its model's name and version."""
    rows = []
    for d in _batch(ws).list_deployments(endpoint):
        row = ws.batch.describe_deployment(d).model_dump()
        row["model_name"] = d.model_name
        row["model_version"] = d.model_version
        rows.append(row)
    return rows


def _invocations(ws: Any, endpoint: str) -> dict[str, Any]:
    """The endpoint's jobs, newest first, and whether any is still going."""
    now = now_ms()
    jobs = _batch(ws).jobs_of(endpoint, MAX_INVOCATIONS)
    rows = [{"job": j, "duration": duration_ms(j, now)} for j in jobs]
    live = any(not JobStatus(j.status).is_terminal for j in jobs)
    return {"invocations": rows, "live": live}


def _page(ws: Any, name: str, base: str) -> dict[str, Any]:
    e = _batch(ws).get(name)  # 404 with the known names
    return {
        "e": ws.batch.describe(e, base),
        "deployments": _deployments(ws, e.name),
        "assets": [a for a in ws.data.list() if a.type in ("uri_folder", "uri_file")],
        **_invocations(ws, e.name),
    }


@router.get("/batch-endpoints/{name}")
async def batch_page(request: Request, name: str) -> Response:
    ws = request.app.state.ws
    base = endpoints_pages.base_url(request)
    ctx = await run_in_threadpool(_page, ws, name, base)
    return render(request, "batch/endpoint.html", ctx, section="endpoints")


@router.get("/batch-endpoints/{name}/jobs")
async def invocations_fragment(request: Request, name: str) -> Response:
    """The invocations table, polled by the page while a job is running."""
    ws = request.app.state.ws

    def gather() -> dict[str, Any]:
        e = _batch(ws).get(name)
        return {"e": {"name": e.name}, **_invocations(ws, e.name)}

    return render(request, "batch/_jobs.html", await run_in_threadpool(gather))


@router.post("/batch-endpoints/{name}/invoke")
async def invoke(request: Request, name: str) -> Response:
    """Score a data asset or a datastore path; the browser goes to the new job."""
    ws = request.app.state.ws
    form = await request.form()
    folder = str(form.get("input") or "").strip()
    deployment = str(form.get("deployment") or "").strip() or None
    principal = getattr(request.state, "principal", None)
    job = await run_in_threadpool(_batch(ws).invoke, name, folder, deployment, principal)
    return Response(status_code=204, headers={"HX-Redirect": f"/jobs/{quote(job.name, safe='')}"})


@router.post("/batch-endpoints/{name}/deployments/{deployment}/default")
async def make_default(request: Request, name: str, deployment: str) -> Response:
    """Make ``deployment`` the one invocations use when they name none."""
    ws = request.app.state.ws

    def work() -> dict[str, Any]:
        e = _batch(ws).update(name, {"defaults": {"deployment_name": deployment}})
        return {
            "e": ws.batch.describe(e, endpoints_pages.base_url(request)),
            "deployments": _deployments(ws, e.name),
            "flash": f"{e.default_deployment} is now the default deployment",
            "oob": True,
        }

    return render(request, "batch/_deployments.html", await run_in_threadpool(work))
