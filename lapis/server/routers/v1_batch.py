"""Lapis' batch-endpoint API under ``/api/v1/batchEndpoints`` (Azure's REST name).

Bodies are the endpoint or deployment document as Azure's YAML has it (a JSON
object), with an optional ``"source"`` naming the file it came from so that
messages can point at it. A deployment body also carries what the CLI read or
uploaded for it: ``code_snapshot`` (the digest of the uploaded code folder),
``environment_file`` / ``conda_file_text``, and ``set_default``.

``POST …/invoke`` with ``{"input": FOLDER|FILE|URL, "input_type": T?,
"deployment_name": D?}`` submits the scoring job and answers with it (the jobs
API's shape); ``GET …/jobs`` lists an endpoint's invocations.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lapis.api import endpoints as api
from lapis.api import jobs as jobs_api
from lapis.endpoints.batch.service import split_request
from lapis.errors import MalformedRequest
from lapis.server.body import json_object
from lapis.server.context import Workspace
from lapis.server.routers.mlflow._handler import json_response
from lapis.server.routers.v1_jobs import job_dict

router = APIRouter(prefix="/api/v1/batchEndpoints", tags=["batch endpoints"])


def _ws(request: Request) -> Workspace:
    ws: Workspace = request.app.state.ws
    return ws


def _who(request: Request) -> str | None:
    principal = getattr(request.state, "principal", None)
    return principal.name if principal is not None else None


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def _body(request: Request) -> dict[str, Any]:
    return await json_object(request)


def _source(data: dict[str, Any]) -> str:
    source = data.pop("source", None)
    return str(source) if source else "<request>"


# --- endpoints ---------------------------------------------------------------------------
@router.post("", status_code=201, responses={201: {"model": api.BatchEndpointOut}})
async def create_endpoint(request: Request) -> Response:
    """Create a batch endpoint (``name``, ``description``, ``tags``, ``defaults``)."""
    ws = _ws(request)
    doc = await _body(request)
    source = _source(doc)

    def work() -> api.BatchEndpointOut:
        e = ws.batch.create(doc, source=source, created_by=_who(request))
        return ws.batch.describe(e, _base(request))

    return json_response(await run_in_threadpool(work), status=201)


@router.get("", responses={200: {"model": api.BatchEndpointList}})
async def list_endpoints(request: Request) -> Response:
    ws = _ws(request)

    def work() -> api.BatchEndpointList:
        base = _base(request)
        return api.BatchEndpointList(
            endpoints=[ws.batch.describe(e, base) for e in ws.batch.list()]
        )

    return json_response(await run_in_threadpool(work))


@router.get("/{name}", responses={200: {"model": api.BatchEndpointOut}})
async def get_endpoint(request: Request, name: str) -> Response:
    ws = _ws(request)

    def work() -> api.BatchEndpointOut:
        return ws.batch.describe(ws.batch.get(name), _base(request))

    return json_response(await run_in_threadpool(work))


@router.patch("/{name}", responses={200: {"model": api.BatchEndpointOut}})
async def update_endpoint(request: Request, name: str) -> Response:
    """Change description, tags or ``defaults.deployment_name``."""
    ws = _ws(request)
    doc = await _body(request)
    source = _source(doc)

    def work() -> api.BatchEndpointOut:
        e = ws.batch.update(name, doc, source=source)
        return ws.batch.describe(e, _base(request))

    return json_response(await run_in_threadpool(work))


@router.delete("/{name}", responses={200: {"model": api.Deleted}})
async def delete_endpoint(request: Request, name: str) -> Response:
    """Delete the endpoint and its deployments; past invocations stay as jobs."""
    ws = _ws(request)
    e = await run_in_threadpool(ws.batch.delete, name)
    return json_response(api.Deleted(name=e.name, deleted=True))


# --- deployments -------------------------------------------------------------------------
@router.post(
    "/{endpoint}/deployments", status_code=201, responses={201: {"model": api.BatchDeploymentOut}}
)
async def create_deployment(request: Request, endpoint: str) -> Response:
    """Create a deployment; the endpoint's first one becomes its default."""
    ws = _ws(request)
    doc, extras = split_request(await _body(request))

    def work() -> api.BatchDeploymentOut:
        d, _ = ws.batch.create_deployment(endpoint, doc, extras, created_by=_who(request))
        return ws.batch.describe_deployment(d)

    return json_response(await run_in_threadpool(work), status=201)


@router.put("/{endpoint}/deployments/{name}", responses={200: {"model": api.BatchDeploymentOut}})
async def update_deployment(request: Request, endpoint: str, name: str) -> Response:
    """Replace a deployment's document (the whole YAML, as ``update -f`` sends it)."""
    ws = _ws(request)
    doc, extras = split_request(await _body(request))

    def work() -> api.BatchDeploymentOut:
        d, _ = ws.batch.create_deployment(endpoint, doc, extras, replace=name)
        return ws.batch.describe_deployment(d)

    return json_response(await run_in_threadpool(work))


@router.get("/{endpoint}/deployments", responses={200: {"model": api.BatchDeploymentList}})
async def list_deployments(request: Request, endpoint: str) -> Response:
    ws = _ws(request)

    def work() -> api.BatchDeploymentList:
        found = ws.batch.list_deployments(endpoint)
        return api.BatchDeploymentList(deployments=[ws.batch.describe_deployment(d) for d in found])

    return json_response(await run_in_threadpool(work))


@router.get("/{endpoint}/deployments/{name}", responses={200: {"model": api.BatchDeploymentOut}})
async def get_deployment(request: Request, endpoint: str, name: str) -> Response:
    ws = _ws(request)

    def work() -> api.BatchDeploymentOut:
        return ws.batch.describe_deployment(ws.batch.get_deployment(endpoint, name))

    return json_response(await run_in_threadpool(work))


@router.delete("/{endpoint}/deployments/{name}", responses={200: {"model": api.Deleted}})
async def delete_deployment(request: Request, endpoint: str, name: str) -> Response:
    ws = _ws(request)
    d = await run_in_threadpool(ws.batch.delete_deployment, endpoint, name)
    return json_response(api.Deleted(name=d.name, deleted=True))


# --- invocations -------------------------------------------------------------------------
@router.post("/{name}/invoke", status_code=201, responses={201: {"model": jobs_api.JobOut}})
async def invoke(request: Request, name: str) -> Response:
    """Score a folder, a file or a file at an http(s) URL → the scoring job.

    ``{"input": …, "input_type": "uri_folder"|"uri_file"?, "deployment_name": D?}``;
    without ``input_type`` a URL or a file is ``uri_file``, a folder ``uri_folder``.
    """
    ws = _ws(request)
    body = await _body(request)
    given = body.get("input")
    deployment = body.get("deployment_name")
    input_type = body.get("input_type")
    if not isinstance(given, str) or not given:
        raise MalformedRequest('invoke needs {"input": "<folder on the server\'s machine>"}')
    if deployment is not None and not isinstance(deployment, str):
        raise MalformedRequest("'deployment_name' must be a string")
    if input_type is not None and not isinstance(input_type, str):
        raise MalformedRequest("'input_type' must be uri_folder or uri_file")
    principal = getattr(request.state, "principal", None)

    def work() -> Any:
        return ws.batch.invoke(name, given, deployment, principal, input_type=input_type)

    job = await run_in_threadpool(work)
    return json_response(job_dict(job), status=201)


@router.get("/{name}/jobs", responses={200: {"model": jobs_api.JobList}})
async def list_jobs(
    request: Request, name: str, max_results: int = 50, deployment: str | None = None
) -> Response:
    """The endpoint's invocations, newest first (only one deployment's with ``deployment``)."""
    ws = _ws(request)
    jobs = await run_in_threadpool(ws.batch.jobs_of, name, max_results, deployment)
    return json_response({"jobs": [job_dict(j) for j in jobs]})
