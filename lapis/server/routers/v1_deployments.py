"""Online deployments under ``/api/v1/endpoints/{endpoint}/deployments``.

A create or update body is the deployment document as Azure's YAML has it (a
JSON object) plus what the CLI prepared: ``source`` (the file, for messages),
``code_snapshot`` (the digest of the code folder uploaded to
``/api/v1/snapshots``), ``environment_file`` / ``conda_file_text`` (an
environment given as a file, read by the client) and ``all_traffic``. An
inline model ``path`` is registered by the client first, so the server only
ever sees ``azureml:NAME:VERSION``.

Create and update answer at once with ``provisioning_state`` ``Creating`` or
``Updating``; the instance manager brings it to ``Succeeded`` or ``Failed``.
Delete waits until the deployment's processes have stopped.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lapis.api import endpoints as api
from lapis.endpoints.control.deployments import DeploymentService, split_request
from lapis.errors import InvalidParameterValue
from lapis.server.routers.mlflow._handler import json_response
from lapis.server.routers.v1_endpoints import _body, _who, _ws

router = APIRouter(prefix="/api/v1/endpoints/{endpoint}/deployments", tags=["deployments"])


def _svc(request: Request) -> DeploymentService:
    svc: DeploymentService = _ws(request).deployments
    return svc


@router.post("", status_code=201, responses={201: {"model": api.DeploymentOut}})
async def create_deployment(request: Request, endpoint: str) -> Response:
    """Create a deployment; its instances start in the background."""
    svc = _svc(request)
    body, source = await _body(request)
    doc, extras = split_request(body)
    extras["source"] = source

    def work() -> api.DeploymentOut:
        d = svc.create(endpoint, doc, extras, created_by=_who(request))
        return svc.describe(d)

    return json_response(await run_in_threadpool(work), status=201)


@router.get("", responses={200: {"model": api.DeploymentList}})
async def list_deployments(request: Request, endpoint: str) -> Response:
    svc = _svc(request)

    def work() -> api.DeploymentList:
        return api.DeploymentList(deployments=[svc.describe(d) for d in svc.list(endpoint)])

    return json_response(await run_in_threadpool(work))


@router.get("/{name}", responses={200: {"model": api.DeploymentOut}})
async def get_deployment(request: Request, endpoint: str, name: str) -> Response:
    svc = _svc(request)
    return json_response(await run_in_threadpool(lambda: svc.describe(svc.get(endpoint, name))))


@router.patch("/{name}", responses={200: {"model": api.DeploymentOut}})
async def update_deployment(request: Request, endpoint: str, name: str) -> Response:
    """Change any keys; a new model, code, environment or variables roll the instances over."""
    svc = _svc(request)
    body, source = await _body(request)
    doc, extras = split_request(body)
    extras["source"] = source

    def work() -> api.DeploymentOut:
        return svc.describe(svc.update(endpoint, name, doc, extras))

    return json_response(await run_in_threadpool(work))


@router.delete("/{name}", responses={200: {"model": api.DeploymentDeleted}})
async def delete_deployment(request: Request, endpoint: str, name: str) -> Response:
    """Stop the instances and forget the deployment (refused while it takes traffic)."""
    svc = _svc(request)
    d = await run_in_threadpool(svc.delete, endpoint, name)
    return json_response(api.DeploymentDeleted(endpoint=endpoint, name=d.name, deleted=True))


@router.get("/{name}/logs", responses={200: {"model": api.DeploymentLogs}})
async def deployment_logs(
    request: Request, endpoint: str, name: str, lines: int = 200, instance: int | None = None
) -> Response:
    """The deployment log and each instance's output (or one instance's), last ``lines`` each."""
    if lines < 1 or lines > 100_000:
        raise InvalidParameterValue(f"lines must be from 1 to 100000, got {lines}")
    svc = _svc(request)
    text = await run_in_threadpool(svc.logs, endpoint, name, lines, instance)
    return json_response(
        api.DeploymentLogs(endpoint=endpoint, name=name, instance=instance, log=text)
    )
